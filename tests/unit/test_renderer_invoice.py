"""The `invoice` template: totals printed exactly, file name, data errors, long invoices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.renderer.limits import RenderLimits
from services.renderer.templates.invoice import invoice_file_name
from shared.blobs import FolderBlobStore
from tests.support.pdfs import flat_text, text_of
from tests.support.rendering import rejected, render


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def invoice(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seller": {"name": "Müller & Söhne GmbH", "address": "Hauptstraße 1\n10115 Berlin"},
        "buyer": {"name": "Ωmega Ltd", "address": "1 Main St\nLondon"},
        "items": [
            {"description": "Widget", "quantity": "3", "unit_price": "19.99", "vat_rate": "0.19"},
            {"description": "Book", "quantity": "2", "unit_price": "12.345", "vat_rate": "0.07"},
            {
                "description": "Consulting",
                "quantity": "1.5",
                "unit_price": "80",
                "vat_rate": "0.19",
            },
        ],
        "currency": "EUR",
        "number": "2025-0042",
        "issue_date": "2025-07-01",
        "due_date": "2025-07-31",
    }
    data.update(changes)
    return {"template": "invoice", "data": data}


def test_an_invoice_prints_its_lines_vat_per_rate_and_exact_totals(
    store: FolderBlobStore,
) -> None:
    key, pdf = render(store, invoice())

    assert key.endswith("/invoice-2025-0042.pdf")
    text = flat_text(pdf)
    for expected in (
        "Invoice 2025-0042",
        "Müller & Söhne GmbH",
        "Hauptstraße 1 10115 Berlin",
        "Ωmega Ltd",
        "Issue date 2025-07-01",
        "Due date 2025-07-31",
        "1 Widget 3 19.99 EUR 19 % 59.97 EUR",
        "2 Book 2 12.345 EUR 7 % 24.69 EUR",
        "3 Consulting 1.5 80.00 EUR 19 % 120.00 EUR",
        "Net total 204.66 EUR",
        "VAT 7 % on 24.69 EUR 1.73 EUR",
        "VAT 19 % on 179.97 EUR 34.19 EUR",
        "Total due 240.58 EUR",
    ):
        assert expected in text, expected
    assert pdf.metadata is not None and pdf.metadata.title == "Invoice 2025-0042"


def test_large_amounts_are_grouped_by_thousands(store: FolderBlobStore) -> None:
    items = [{"description": "Server", "quantity": "2", "unit_price": "6172.25", "vat_rate": "0"}]

    _, pdf = render(store, invoice(items=items, currency="USD"))

    assert "Total due 12,344.50 USD" in flat_text(pdf)


def test_a_long_invoice_repeats_the_header_and_numbers_its_pages(store: FolderBlobStore) -> None:
    items = [
        {"description": f"Item {i}", "quantity": "1", "unit_price": "1.00", "vat_rate": "0.2"}
        for i in range(90)
    ]

    _, pdf = render(store, invoice(items=items))

    pages = [page.extract_text() for page in pdf.pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "Invoice 2025-0042" in text  # in the footer of every page
        assert "Description" in text  # the items' header row repeats
    assert "Total due 108.00 EUR" in " ".join(pages[-1].split())


@pytest.mark.parametrize(
    ("number", "name"),
    [
        ("2025-0042", "invoice-2025-0042.pdf"),
        ("2025/07 A", "invoice-2025-07-A.pdf"),
        ("../../etc/passwd", "invoice-etc-passwd.pdf"),
        ("Счёт №5", "invoice-5.pdf"),
        ("///", "invoice.pdf"),
        ("x" * 64, f"invoice-{'x' * 64}.pdf"),
    ],
)
def test_the_file_name_is_made_safe_from_the_invoice_number(number: str, name: str) -> None:
    assert invoice_file_name(number) == name


def test_an_invoice_number_with_slashes_is_stored_under_the_job(store: FolderBlobStore) -> None:
    key, _ = render(store, invoice(number="../2025/7"))

    assert key.startswith("outputs/") and key.endswith("/invoice-2025-7.pdf")
    assert key.count("/") == 2


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"seller": None}, "data.seller: Input should be a valid dictionary"),
        ({"items": []}, "data.items: List should have at least 1 item"),
        (
            {"items": [{"description": "x", "quantity": "1.0.0", "unit_price": "1"}]},
            "data.items.0.quantity: must be an integer below 10^12 or a decimal string",
        ),
        (
            {"items": [{"description": "x", "quantity": 1.5, "unit_price": "1"}]},
            "data.items.0.quantity: send a quantity as an integer or a decimal string",
        ),
        (
            {"items": [{"description": "x", "quantity": 1, "unit_price": 19.99}]},
            'data.items.0.unit_price: send money as a decimal string such as "19.99"',
        ),
        ({"currency": "euro"}, "data.currency: String should match pattern"),
        ({"issue_date": "2025-02-30"}, "data.issue_date: '2025-02-30' is not a real date"),
        ({"due_date": "2025-06-30"}, "data.due_date: is before the issue date"),
        (
            {"items": [{"description": "x", "quantity": "1", "unit_price": "1", "vat_rate": "19"}]},
            "data.items.0.vat_rate: a VAT rate is a fraction",
        ),
    ],
)
def test_invalid_invoice_data_is_rejected_naming_the_field(
    store: FolderBlobStore, changes: dict[str, Any], expected: str
) -> None:
    error = rejected(store, invoice(**changes))

    assert str(error).startswith("invalid invoice data: ")
    assert expected in str(error)


def test_more_items_than_the_table_row_limit_is_rejected(store: FolderBlobStore) -> None:
    items = [{"description": "x", "quantity": "1", "unit_price": "1"}] * 6

    error = rejected(store, invoice(items=items), limits=RenderLimits(max_table_rows=5))

    assert "data.items has 6 rows, over the limit of 5 (MAX_TABLE_ROWS)" in str(error)


@pytest.mark.parametrize(
    "number",
    [
        "INV-2026-000042",  # 15: wrapped as INV-2026-00 / 0042 in the narrow facts column
        "INV/2026/NORTH-REGION/000000000000000042",  # 40
        "W" * 20 + "-" + "INV-2026-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:43],  # 64, wide glyphs
    ],
)
def test_a_long_invoice_number_is_never_broken(store: FolderBlobStore, number: str) -> None:
    _, reader = render(store, invoice(number=number))
    lines = text_of(reader).splitlines()
    assert lines[1:3] == ["Invoice number", number], lines  # the number's own row, whole
    assert f"Invoice {number}" in lines  # the default title, on one line too
