"""The render handler as the runner calls it: params, outputs, odd text, layout failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.renderer.handler import render_job
from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore
from shared.config import Settings
from shared.jobtypes.render import RenderParams
from tests.support.pdfs import open_pdf, text_of
from tests.support.rendering import rejected, render, render_job_with


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def paragraph_doc(text: str, **params: Any) -> dict[str, Any]:
    return {"template": "document", "data": {"blocks": [{"paragraph": text}]}, **params}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"template": "letter"}, "template: Input should be 'document', 'invoice' or 'report'"),
        ({"data": {}}, "template: Field required"),
        ({**paragraph_doc("x"), "page_size": "A5"}, "page_size: Input should be 'A4' or 'Letter'"),
        (
            {**paragraph_doc("x"), "margin_mm": 5},
            "margin_mm: Input should be greater than or equal",
        ),
        ({**paragraph_doc("x"), "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"template": "document", "data": []}, "data: Input should be a valid dictionary"),
    ],
)
def test_invalid_params_are_rejected_naming_the_field(
    store: FolderBlobStore, params: dict[str, Any], expected: str
) -> None:
    error = rejected(store, params)

    assert str(error).startswith("invalid params: ")
    assert expected in str(error)
    assert error.kind == "invalid_params"


def test_the_margin_defaults_to_20_mm() -> None:
    assert RenderParams(template="document").margin_mm == 20


def test_the_pdf_is_the_only_file_written_under_the_job_outputs(store: FolderBlobStore) -> None:
    job = render_job_with(store, paragraph_doc("hello"))

    keys = render_job(job, store, RenderLimits())

    assert keys == [f"outputs/{job.id}/document.pdf"]
    assert store.list(f"outputs/{job.id}") == keys  # no temp file left next to it
    assert "hello" in text_of(open_pdf(store.read_bytes(keys[0])))


def test_rendering_a_job_twice_gives_the_same_key_and_a_whole_pdf(store: FolderBlobStore) -> None:
    job = render_job_with(store, paragraph_doc("again"))

    first = render_job(job, store, RenderLimits())
    second = render_job(job, store, RenderLimits())

    assert first == second
    assert "again" in text_of(open_pdf(store.read_bytes(second[0])))


def test_control_characters_are_dropped_not_fatal(store: FolderBlobStore) -> None:
    _, pdf = render(store, paragraph_doc("a\x00b\x07c\x1bd\tf\r\ng"))

    lines = text_of(pdf).splitlines()
    assert "abcd f" in lines  # a paragraph folds runs of spaces
    assert "g" in lines


def test_a_lone_surrogate_is_rejected_naming_the_field(store: FolderBlobStore) -> None:
    error = rejected(store, paragraph_doc("bad \ud800 text"))

    assert "data.blocks.0.paragraph: Input should be a valid string" in str(error)


def test_a_title_the_font_cannot_show_is_rejected_naming_params_title(
    store: FolderBlobStore,
) -> None:
    error = rejected(store, paragraph_doc("x", title="報告"))

    assert str(error).startswith("params.title: the embedded font")
    assert error.kind == "unsupported_text"


def test_a_table_row_taller_than_a_page_fails_clearly(store: FolderBlobStore) -> None:
    table = {"header": ["a"], "rows": [["word " * 8000]]}
    params = {"template": "document", "data": {"blocks": [{"table": table}]}}

    error = rejected(store, params)

    assert str(error).startswith("content does not fit on a page: a table row")
    assert error.kind == "layout"
    assert len(str(error)) < 400


def test_a_long_header_text_is_cut_with_an_ellipsis(store: FolderBlobStore) -> None:
    title = "A very long report title " * 12
    params = {
        "template": "report",
        "data": {"title": title.strip(), "sections": [{"heading": "h"}]},
    }

    _, pdf = render(store, params)

    header = pdf.pages[0].extract_text().splitlines()
    assert any(
        line.startswith("A very long report title") and line.endswith("…") for line in header
    )


def test_limits_come_from_the_settings() -> None:
    settings = Settings(max_pdf_pages=7, max_table_rows=8, max_pdf_images=9, max_image_pixels=10)

    assert RenderLimits.from_settings(settings) == RenderLimits(
        max_pdf_pages=7, max_table_rows=8, max_pdf_images=9, max_image_pixels=10
    )
