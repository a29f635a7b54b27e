"""The rule for titles, in every template: `title` (`--title`) is the PDF's metadata only; the
visible heading comes from the template's data (`data.title`; an invoice's number), and it
is the metadata title when the job gives none."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared.blobs import FolderBlobStore
from tests.support.pdfs import text_of
from tests.support.rendering import render
from tests.unit.test_renderer_invoice import invoice

REPORT: dict[str, Any] = {
    "template": "report",
    "data": {"title": "Sales by region", "sections": [{"heading": "North", "text": "Up."}]},
}
DOCUMENT: dict[str, Any] = {
    "template": "document",
    "data": {"title": "Packing list", "blocks": ["Tent and stove."]},
}
CASES = [(DOCUMENT, "Packing list"), (REPORT, "Sales by region"), (invoice(), "Invoice 2025-0042")]


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


@pytest.mark.parametrize(("params", "heading"), CASES, ids=["document", "report", "invoice"])
def test_the_title_param_sets_the_metadata_and_leaves_the_heading_to_the_data(
    store: FolderBlobStore, params: dict[str, Any], heading: str
) -> None:
    _, pdf = render(store, {**params, "title": "Archive copy 7"})

    assert pdf.metadata is not None and pdf.metadata.title == "Archive copy 7"
    text = text_of(pdf)
    assert text.startswith(heading)
    assert "Archive copy" not in text


@pytest.mark.parametrize(("params", "heading"), CASES, ids=["document", "report", "invoice"])
def test_without_a_title_param_the_heading_is_the_metadata_title(
    store: FolderBlobStore, params: dict[str, Any], heading: str
) -> None:
    _, pdf = render(store, params)

    assert pdf.metadata is not None and pdf.metadata.title == heading
    assert text_of(pdf).startswith(heading)


def test_a_contact_sheet_is_headed_contact_sheet_whatever_its_metadata_title(
    store: FolderBlobStore,
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(buffer, "PNG")
    params = {"template": "document", "title": "Thumbnails of photo.jpg"}

    _, pdf = render(store, params, inputs=[("a.png", buffer.getvalue())])

    assert pdf.metadata is not None and pdf.metadata.title == "Thumbnails of photo.jpg"
    assert text_of(pdf).startswith("Contact sheet")
