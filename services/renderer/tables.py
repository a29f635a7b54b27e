"""Tables from data: a header row and rows of cells. A cell is drawn as a plain string or an
escaped Paragraph: either way its text prints literally, never as markup."""

from __future__ import annotations

import math

from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Paragraph, Table, TableStyle

from services.renderer.limits import RenderLimits
from services.renderer.styles import GRID, HEADER_FILL, ZEBRA_FILL, Styles
from services.renderer.text import clean, para
from shared.jobtypes.render_data import Cell, TableData

_PADDING = 6  # points left and right in every cell


def check_table(table: TableData, limits: RenderLimits, where: str) -> None:
    limits.check_table(len(table.rows), table.columns, where)


def cell_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_number(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def column_widths(texts: list[list[str]], total: float) -> list[float]:
    """Share `total` by how much text each column holds (square-rooted, so one long column
    cannot squeeze the others to nothing)."""
    columns = len(texts[0])
    weights = [
        math.sqrt(min(max((len(row[c]) for row in texts), default=1), 60) + 4)
        for c in range(columns)
    ]
    scale = total / sum(weights)
    return [w * scale for w in weights]


def table_flowable(table: TableData, width: float, styles: Styles) -> Table:
    texts = [[clean(h) for h in table.header]] if table.header else []
    texts += [[clean(cell_text(v)) for v in row] for row in table.rows]
    widths = column_widths(texts, width)
    # A column of numbers only (blanks aside) is right-aligned, its header too.
    numeric = [
        all(_is_number(row[c]) for row in table.rows if row[c] is not None)
        and any(row[c] is not None for row in table.rows)
        for c in range(table.columns)
    ]
    header_styles = [styles.cell_header_right if n else styles.cell_header for n in numeric]
    body_styles = [styles.cell_right if n else styles.cell for n in numeric]
    cells = [
        [
            _cell(text, (header_styles if r == 0 and table.header else body_styles)[c], widths[c])
            for c, text in enumerate(row)
        ]
        for r, row in enumerate(texts)
    ]
    flowable = Table(cells, colWidths=widths, repeatRows=1 if table.header else 0, hAlign="LEFT")
    flowable.setStyle(_style(styles, numeric, has_header=bool(table.header), rows=len(cells)))
    return flowable


def _cell(text: str, style: ParagraphStyle, width: float) -> str | Paragraph:
    """A short one-line cell as a plain string, which reportlab draws without parsing it as
    markup (and several times faster than a Paragraph); anything longer wraps in a Paragraph."""
    fits = stringWidth(text, style.fontName, style.fontSize) <= width - 2 * _PADDING
    if fits and "\n" not in text:
        return text
    return para(text, style)


def _style(styles: Styles, numeric: list[bool], *, has_header: bool, rows: int) -> TableStyle:
    """Plain-string cells take font, size and alignment from here; Paragraphs from their style."""
    cell = styles.cell
    commands: list[tuple] = [
        ("FONT", (0, 0), (-1, -1), cell.fontName, cell.fontSize, cell.leading),
        ("GRID", (0, 0), (-1, -1), 0.5, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    commands += [("ALIGN", (c, 0), (c, -1), "RIGHT") for c, n in enumerate(numeric) if n]
    first_body = 1 if has_header else 0
    if has_header:
        header = styles.cell_header
        commands.append(("FONT", (0, 0), (-1, 0), header.fontName, header.fontSize, header.leading))
        commands.append(("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL))
    if rows > first_body:
        commands.append(("ROWBACKGROUNDS", (0, first_body), (-1, -1), [None, ZEBRA_FILL]))
    return TableStyle(commands)
