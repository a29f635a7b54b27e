"""The `invoice` template: parties, dates, line items, VAT per rate and the total due.

The data is `InvoiceData` from shared/jobtypes/render_data.py; the sums come from `money.py`.
"""

from __future__ import annotations

import re
from datetime import date

from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from services.renderer.models import parse_data
from services.renderer.money import (
    Totals,
    compute_totals,
    format_money,
    format_price,
    format_quantity,
    format_rate,
)
from services.renderer.pages import PageDecor
from services.renderer.styles import GRID, HEADER_FILL, Styles
from services.renderer.templates.base import RenderContext, Rendered
from services.renderer.text import one_line, para
from shared.errors import PermanentJobError
from shared.jobtypes.render import RenderParams
from shared.jobtypes.render_data import InvoiceData, Party

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ITEM_SHARES = (0.06, 0.40, 0.10, 0.16, 0.09, 0.19)  # #, description, qty, price, VAT, amount


def invoice_file_name(number: str) -> str:
    """`invoice-<number>.pdf` with the number made safe for a blob key (`2025/07 A` ->
    `invoice-2025-07-A.pdf`)."""
    safe = _UNSAFE.sub("-", number).strip("-.")[:100]
    return f"invoice-{safe}.pdf" if safe else "invoice.pdf"


def render_invoice(params: RenderParams, ctx: RenderContext) -> Rendered:
    data = parse_data(InvoiceData, params.data, "invoice")
    issued, due = _date(data.issue_date, "issue_date"), _date(data.due_date, "due_date")
    if due < issued:
        raise PermanentJobError(
            "invalid invoice data: data.due_date: is before the issue date", kind="invalid_data"
        )
    ctx.limits.check_table(len(data.items), 6, "data.items")
    totals = compute_totals(data.items)
    s = ctx.styles
    # The heading is always the number (params.title is the PDF's metadata only), kept to
    # one line like the number row.
    title = f"Invoice {data.number}"
    width = ctx.page.frame_width
    story: list[Flowable] = [
        one_line(title, s.title, width),
        Spacer(1, 10),
        _number(data.number, width, s),
        Spacer(1, 6),
        _head(data, width, s),
        Spacer(1, 16),
        _items(data, totals, width, s),
        Spacer(1, 10),
        KeepTogether(_totals(data.currency, totals, width, s)),
    ]
    return Rendered(
        story=story,
        file_name=invoice_file_name(data.number),
        title=title,
        decor=PageDecor(footer_left=f"{data.seller.name} · Invoice {data.number}"),
    )


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PermanentJobError(
            f"invalid invoice data: data.{field}: {value!r} is not a real date",
            kind="invalid_data",
        ) from None


def _party(label: str, party: Party, s: Styles) -> list[Flowable]:
    return [para(label, s.cell_header), para(party.name, s.strong), para(party.address, s.cell)]


def _number(number: str, width: float, s: Styles) -> Table:
    """The invoice number on a full-width row of its own: up to 64 characters never wrap
    (a narrow column broke `INV-2026-000042` into `INV-2026-00` / `0042`)."""
    label_width = width * 0.19
    padding = 12  # the table's default 6 pt either side of a cell
    row = Table(
        [
            [
                para("Invoice number", s.cell_header),
                one_line(number, s.cell, width - label_width - padding),
            ]
        ],
        colWidths=[label_width, width - label_width],
    )
    row.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (0, -1), 0)])
    )
    return row


def _head(data: InvoiceData, width: float, s: Styles) -> Table:
    facts = Table(
        [
            [para("Issue date", s.cell_header), para(data.issue_date, s.cell_right)],
            [para("Due date", s.cell_header), para(data.due_date, s.cell_right)],
        ],
        colWidths=[width * 0.19, width * 0.15],
    )
    head = Table(
        [[_party("From", data.seller, s), _party("Bill to", data.buyer, s), facts]],
        colWidths=[width * 0.33, width * 0.33, width * 0.34],
    )
    head.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, -1), 0),  # the seller lines up with the title
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
            ]
        )
    )
    return head


def _items(data: InvoiceData, totals: Totals, width: float, s: Styles) -> Table:
    header = ["#", "Description", "Qty", "Unit price", "VAT", "Amount"]
    rows: list[list[Paragraph]] = [
        [para(h, s.cell_header if i == 1 else s.cell_header_right) for i, h in enumerate(header)]
    ]
    for number, line in enumerate(totals.lines, start=1):
        rows.append(
            [
                para(str(number), s.cell_right),
                para(line.description, s.cell),
                para(format_quantity(line.quantity), s.cell_right),
                para(format_price(line.unit_price, data.currency), s.cell_right),
                para(format_rate(line.vat_rate), s.cell_right),
                para(format_money(line.net, data.currency), s.cell_right),
            ]
        )
    table = Table(rows, colWidths=[width * share for share in _ITEM_SHARES], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
                ("LINEBELOW", (0, 0), (-1, -1), 0.5, GRID),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _totals(currency: str, totals: Totals, width: float, s: Styles) -> list[Flowable]:
    rows = [[para("Net total", s.cell), para(format_money(totals.net, currency), s.cell_right)]]
    for group in totals.vat_groups:
        label = f"VAT {format_rate(group.rate)} on {format_money(group.net, currency)}"
        rows.append([para(label, s.cell), para(format_money(group.vat, currency), s.cell_right)])
    rows.append(
        [
            para("Total due", s.strong),
            para(format_money(totals.gross, currency), s.strong_right),
        ]
    )
    table = Table(rows, colWidths=[width * 0.32, width * 0.22], hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                ("LINEABOVE", (0, -1), (-1, -1), 1, GRID),
                ("TOPPADDING", (0, -1), (-1, -1), 6),
            ]
        )
    )
    return [table]
