"""The `document` template through the render handler: real blob store, PDFs read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore
from tests.support.pdfs import flat_text, image_xobjects, page_sizes, text_of
from tests.support.rendering import rejected, render
from tests.unit import images


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def document(*blocks: Any, data_title: str | None = None, **params: Any) -> dict[str, Any]:
    """A document job's params; `data_title` is the visible heading (`data.title`)."""
    data: dict[str, Any] = {"blocks": list(blocks)}
    if data_title is not None:
        data["title"] = data_title
    return {"template": "document", "data": data, **params}


def squeezed(text: str) -> str:
    return "".join(text.split())


def first_text_x(reader: PdfReader) -> float:
    """Where, in points from the left edge, the first text on page 1 starts."""
    xs: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: Any) -> None:
        if text.strip() and not xs:
            xs.append(cm[4] + tm[4])

    reader.pages[0].extract_text(visitor_text=visit)
    return xs[0]


# --- content ----------------------------------------------------------------------------


def test_a_document_prints_its_title_headings_paragraphs_lists_and_table(
    store: FolderBlobStore,
) -> None:
    params = document(
        {"heading": "Packing list"},
        {"paragraph": "We leave at dawn.\n\nSecond paragraph here."},
        "A bare string is a paragraph.",
        {"bullets": ["tent", "stove"]},
        {"numbered": ["pack", "leave"]},
        {"heading": "Weights", "level": 2},
        {"table": {"header": ["item", "kg"], "rows": [["tent", 2.4], ["stove", 0.3]]}},
        data_title="The trip",
    )

    key, pdf = render(store, params)

    assert key.endswith("/document.pdf")
    text = flat_text(pdf)
    for expected in (
        "The trip",
        "Packing list",
        "We leave at dawn.",
        "Second paragraph here.",
        "A bare string is a paragraph.",
        "• tent",
        "• stove",
        "1 pack",
        "2 leave",
        "Weights",
        "item kg",
        "tent 2.4",
        "stove 0.3",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    assert len(pdf.pages) == 1


def test_a_long_table_cell_wraps_inside_its_column(store: FolderBlobStore) -> None:
    long = " ".join(f"word{i}" for i in range(120))
    table = {"header": ["id", "text"], "rows": [[1, long], [2, "short"]]}

    _, pdf = render(store, document({"table": table}))

    assert len(pdf.pages) == 1
    assert long in flat_text(pdf)
    assert max(len(line) for line in text_of(pdf).splitlines()) < 120


def test_reportlab_markup_in_data_is_printed_literally_and_runs_nothing(
    store: FolderBlobStore, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    picture = tmp_path / "on-disk.png"
    picture.write_bytes(images.encode(images.solid((40, 40), "red"), "PNG"))
    # CVE-2023-33733: reportlab evaluated the color attribute as Python.
    exploit = (
        "<para><font color=\"[ [ getattr(pow,Word('__globals__'))['os'].system("
        f"'touch {marker}') for Word in [orgTypeFun('Word', (str,), "
        "{ 'mutated': 1, 'startswith': lambda self, x: False, '__eq__': lambda self,x: "
        "self.mutate() and self.mutated < 0 and str(self) == x, 'mutate': lambda self: "
        "{setattr(self, 'mutated', self.mutated - 1)}, '__hash__': lambda self: hash(str(self)) "
        "})] ] for orgTypeFun in [type(type(1))] ] and 'red'\">exploit</font></para>"
    )
    hostile = [
        f'<img src="{picture}" width="40" height="40"/>',
        '<a href="http://example.invalid/x">link</a>',
        "<b>bold?</b> &amp; &#65; &lt;",
        exploit,
    ]
    params = document(
        {"heading": hostile[0]},
        *({"paragraph": text} for text in hostile),
        {"bullets": hostile[:2]},
        {"table": {"header": [hostile[2]], "rows": [[hostile[1]]]}},
        data_title="<font size=40>big</font>",
    )

    _, pdf = render(store, params)

    # Lines wrap anywhere: compare with all whitespace taken out.
    text = squeezed(text_of(pdf))
    for literal in (*hostile, "<font size=40>big</font>"):
        assert squeezed(literal) in text, literal
    assert image_xobjects(pdf) == 0, "an <img> tag in data embedded a file"
    assert not marker.exists(), "markup in data ran code"
    assert "/URI" not in str(pdf.pages[0].get("/Annots")), "an <a> tag in data made a link"


def test_unicode_text_is_extracted_exactly_as_written(store: FolderBlobStore) -> None:
    samples = [
        "Ærøskøbing, São Paulo, Łódź, Ñandú, Straße, naïve café",
        "Ελληνικά: Καλημέρα κόσμε",
        "Русский: Съешь же ещё этих мягких французских булок",
        "Українська: Ґанок, їжак, є",
        "Symbols: € £ ¥ — “quotes” … ≤ ≥ ±",
    ]

    _, pdf = render(store, document(*({"paragraph": s} for s in samples), data_title="Ünïcödé"))

    text = text_of(pdf)
    for sample in ["Ünïcödé", *samples]:
        assert sample in text, sample


def test_decomposed_accents_print_as_the_precomposed_letters(store: FolderBlobStore) -> None:
    _, pdf = render(store, document({"paragraph": "Cafe\u0301 Zu\u0308rich"}))

    assert "Café Zürich" in text_of(pdf)


def test_cjk_text_is_rejected_naming_the_field_and_the_characters(
    store: FolderBlobStore,
) -> None:
    error = rejected(store, document({"paragraph": "fine"}, {"heading": "日本語"}))

    message = str(error)
    assert "params.data.blocks.1.heading" in message
    assert "'日' (U+65E5)" in message
    assert "no CJK" in message


# --- page set-up and metadata -------------------------------------------------------------


@pytest.mark.parametrize(
    ("page_size", "points"), [("A4", (595.2756, 841.8898)), ("Letter", (612.0, 792.0))]
)
def test_the_page_size_is_the_one_asked_for(
    store: FolderBlobStore, page_size: str, points: tuple[float, float]
) -> None:
    blocks = [{"paragraph": f"paragraph {i} " * 80} for i in range(30)]

    _, pdf = render(store, document(*blocks, page_size=page_size))

    assert len(pdf.pages) > 1
    for width, height in page_sizes(pdf):
        assert width == pytest.approx(points[0], abs=0.01)
        assert height == pytest.approx(points[1], abs=0.01)


@pytest.mark.parametrize("margin_mm", [10, 20, 45])
def test_text_starts_at_the_margin_asked_for(store: FolderBlobStore, margin_mm: float) -> None:
    _, pdf = render(store, document({"paragraph": "left edge"}, margin_mm=margin_mm))

    assert first_text_x(pdf) == pytest.approx(margin_mm * 72 / 25.4, abs=0.5)


def test_title_author_and_subject_become_pdf_metadata(store: FolderBlobStore) -> None:
    params = document(
        {"paragraph": "x"}, title="Jahresbericht Ωμέγα", author="Zoë Jäger", subject="Финансы"
    )

    _, pdf = render(store, params)

    meta = pdf.metadata
    assert meta is not None
    assert (meta.title, meta.author, meta.subject) == (
        "Jahresbericht Ωμέγα",
        "Zoë Jäger",
        "Финансы",
    )
    assert meta.creator == "jobsuite renderer"


def test_the_data_title_is_the_pdf_title_when_params_give_none(store: FolderBlobStore) -> None:
    params = {"template": "document", "data": {"title": "From data", "blocks": ["x"]}}

    _, pdf = render(store, params)

    assert pdf.metadata is not None and pdf.metadata.title == "From data"
    assert text_of(pdf).startswith("From data")


def test_a_document_without_blocks_or_inputs_is_rejected(store: FolderBlobStore) -> None:
    error = rejected(store, {"template": "document"})

    assert "data.blocks: give blocks, or image inputs for a contact sheet" in str(error)


# --- limits ---------------------------------------------------------------------------------


def test_a_table_with_more_rows_than_the_limit_is_rejected(store: FolderBlobStore) -> None:
    limits = RenderLimits(max_table_rows=10)
    table = {"header": ["n"], "rows": [[i] for i in range(11)]}

    error = rejected(store, document("intro", {"table": table}), limits=limits)

    assert "data.blocks.1.table has 11 rows, over the limit of 10 (MAX_TABLE_ROWS)" in str(error)


def test_a_document_longer_than_the_page_limit_is_rejected(store: FolderBlobStore) -> None:
    limits = RenderLimits(max_pdf_pages=3)
    blocks = [{"paragraph": "words " * 400} for _ in range(40)]

    error = rejected(store, document(*blocks), limits=limits)

    assert "more than 3 pages, the limit (MAX_PDF_PAGES)" in str(error)


def test_a_document_exactly_at_the_page_limit_is_rendered(store: FolderBlobStore) -> None:
    limits = RenderLimits(max_pdf_pages=2)

    _, pdf = render(store, document("one", {"page_break": True}, "two"), limits=limits)

    assert len(pdf.pages) == 2
    assert "Page 2 of 2" in pdf.pages[1].extract_text()


# --- schema errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"blocks": [{"tabel": {}}]}, "data.blocks.0.tabel: Extra inputs are not permitted"),
        ({"blocks": [{}]}, "data.blocks.0: a block holds exactly one of"),
        (
            {"blocks": [{"heading": "a", "paragraph": "b"}]},
            "(found: heading, paragraph)",
        ),
        ({"blocks": [{"paragraph": "a", "level": 2}]}, "'level' goes with 'heading' blocks only"),
        ({"blocks": [{"heading": "a", "level": 4}]}, "data.blocks.0.level: Input should be less"),
        (
            {"blocks": [{"table": {"header": ["a", "b"], "rows": [["1"]]}}]},
            "data.blocks.0.table: rows.0 has 1 cells where the table has 2 columns",
        ),
        ({"blocks": [{"table": {}}]}, "a table needs a header, rows or both"),
        ({"blocks": [{"bullets": []}]}, "data.blocks.0.bullets: List should have at least 1"),
        ({"blocks": "not a list"}, "data.blocks: Input should be a valid list"),
        ({"blocks": [{"images": "some"}]}, "data.blocks.0.images"),
        ({"blocks": [{"image": -1}]}, "data.blocks.0.image"),
        ({"blocks": ["x"], "colour": "red"}, "data.colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_document_data_is_rejected_naming_the_field(
    store: FolderBlobStore, data: dict[str, Any], expected: str
) -> None:
    error = rejected(store, {"template": "document", "data": data})

    assert str(error).startswith("invalid document data: ")
    assert expected in str(error)
    assert error.kind == "invalid_data"
