"""The `report` template: sections with text and tables, a header and "Page N of M" on every
page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore
from tests.support.pdfs import flat_text
from tests.support.rendering import rejected, render


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def report(
    sections: list[dict[str, Any]], data_title: str | None = None, **params: Any
) -> dict[str, Any]:
    """A report job's params; `data_title` is the visible heading (`data.title`)."""
    data: dict[str, Any] = {"sections": sections}
    if data_title is not None:
        data["title"] = data_title
    return {"template": "report", "data": data, **params}


def section(index: int, rows: int = 3) -> dict[str, Any]:
    return {
        "heading": f"Section {index}",
        "text": f"Opening of section {index}.\n\nSecond paragraph of section {index}.",
        "table": {
            "header": ["month", "units"],
            "rows": [[f"m{index}-{r}", r * 10] for r in range(rows)],
        },
    }


def test_a_report_prints_its_sections_text_and_tables(store: FolderBlobStore) -> None:
    key, pdf = render(store, report([section(1), section(2)], data_title="Sales Q2"))

    assert key.endswith("/report.pdf")
    text = flat_text(pdf)
    for expected in (
        "Sales Q2",
        "Section 1 Opening of section 1. Second paragraph of section 1.",
        "month units m1-0 0 m1-1 10 m1-2 20",
        "Section 2",
        "m2-2 20",
    ):
        assert expected in text, expected


def test_every_page_has_the_header_and_page_n_of_m(store: FolderBlobStore) -> None:
    sections = [section(i, rows=40) for i in range(6)]
    params = report(sections, data_title="Долгий отчёт", subject="Quarterly", author="Zoë")

    _, pdf = render(store, params)

    total = len(pdf.pages)
    assert total >= 3
    for number, page in enumerate(pdf.pages, start=1):
        text = page.extract_text()
        assert f"Page {number} of {total}" in text
        assert "Долгий отчёт" in text
        assert "Quarterly" in text
        assert "Zoë" in text


def test_a_table_split_over_pages_repeats_its_header(store: FolderBlobStore) -> None:
    _, pdf = render(store, report([section(1, rows=200)]))

    assert len(pdf.pages) >= 3
    for page in pdf.pages:
        assert "month" in page.extract_text()


def test_the_title_comes_from_the_params_then_the_data(store: FolderBlobStore) -> None:
    params = {"template": "report", "data": {"title": "From data", "sections": [section(1)]}}

    _, pdf = render(store, params)
    assert pdf.metadata is not None and pdf.metadata.title == "From data"

    _, pdf = render(store, {**params, "title": "From params"})
    assert pdf.metadata is not None and pdf.metadata.title == "From params"


def test_a_section_without_table_or_text_is_fine(store: FolderBlobStore) -> None:
    _, pdf = render(store, report([{"heading": "Only a heading"}]))

    assert "Only a heading" in flat_text(pdf)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"sections": []}, "data.sections: List should have at least 1 item"),
        ({}, "data.sections: Field required"),
        ({"sections": [{"text": "no heading"}]}, "data.sections.0.heading: Field required"),
        (
            {"sections": [{"heading": "h", "table": {"header": ["a"], "rows": [["1", "2"]]}}]},
            "data.sections.0.table: rows.0 has 2 cells where the table has 1 columns",
        ),
        (
            {"sections": [{"heading": "h", "table": {"rows": [[{"nested": 1}]]}}]},
            "data.sections.0.table.rows.0.0",
        ),
    ],
)
def test_invalid_report_data_is_rejected_naming_the_field(
    store: FolderBlobStore, data: dict[str, Any], expected: str
) -> None:
    error = rejected(store, {"template": "report", "data": data})

    assert str(error).startswith("invalid report data: ")
    assert expected in str(error)


def test_a_section_table_over_the_row_limit_is_rejected(store: FolderBlobStore) -> None:
    limits = RenderLimits(max_table_rows=20)

    error = rejected(store, report([section(0), section(1, rows=21)]), limits=limits)

    assert "data.sections.1.table has 21 rows, over the limit of 20" in str(error)


def test_a_table_wider_than_twenty_columns_is_rejected(store: FolderBlobStore) -> None:
    table = {"header": [f"c{i}" for i in range(21)]}

    error = rejected(store, report([{"heading": "h", "table": table}]))

    assert "data.sections.0.table has 21 columns, over the limit of 20" in str(error)
