"""Paragraph and table styles, all in the embedded fonts (built once per process)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle

from services.renderer.fonts import BOLD, REGULAR, register_fonts

GRID = colors.HexColor("#b0b0b0")
HEADER_FILL = colors.HexColor("#e6e6e6")
ZEBRA_FILL = colors.HexColor("#f7f7f7")
MUTED = colors.HexColor("#555555")


@dataclass(frozen=True)
class Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    headings: tuple[ParagraphStyle, ParagraphStyle, ParagraphStyle]
    body: ParagraphStyle
    bullet: ParagraphStyle
    caption: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle
    cell_header: ParagraphStyle
    cell_header_right: ParagraphStyle
    strong: ParagraphStyle
    strong_right: ParagraphStyle


@cache
def styles() -> Styles:
    register_fonts()
    body = ParagraphStyle("body", fontName=REGULAR, fontSize=10, leading=14, spaceAfter=6)
    cell = ParagraphStyle("cell", body, fontSize=9, leading=11.5, spaceAfter=0)
    cell_header = ParagraphStyle("cell_header", cell, fontName=BOLD)
    strong = ParagraphStyle("strong", body, fontName=BOLD, spaceAfter=0)

    def heading(level: int, size: float) -> ParagraphStyle:
        return ParagraphStyle(
            f"h{level}",
            body,
            fontName=BOLD,
            fontSize=size,
            leading=size * 1.25,
            spaceBefore=size * 0.8,
            spaceAfter=size * 0.4,
            keepWithNext=1,
        )

    return Styles(
        title=ParagraphStyle("title", body, fontName=BOLD, fontSize=20, leading=25, spaceAfter=4),
        subtitle=ParagraphStyle(
            "subtitle", body, fontSize=12, leading=16, textColor=MUTED, spaceAfter=12
        ),
        headings=(heading(1, 15), heading(2, 12.5), heading(3, 11)),
        body=body,
        bullet=ParagraphStyle("bullet", body, spaceAfter=2),
        caption=ParagraphStyle(
            "caption",
            body,
            fontSize=8,
            leading=10,
            textColor=MUTED,
            alignment=TA_CENTER,
            spaceAfter=0,
        ),
        cell=cell,
        cell_right=ParagraphStyle("cell_right", cell, alignment=TA_RIGHT),
        cell_header=cell_header,
        cell_header_right=ParagraphStyle("cell_header_right", cell_header, alignment=TA_RIGHT),
        strong=strong,
        strong_right=ParagraphStyle("strong_right", strong, alignment=TA_RIGHT),
    )
