"""A grid of images with captions: the `images` block, and a document with no blocks."""

from __future__ import annotations

from reportlab.platypus import Flowable, Table, TableStyle

from services.renderer.images import InputImage, image_flowable
from services.renderer.styles import GRID
from services.renderer.templates.base import RenderContext
from services.renderer.text import para

_PAD = 6  # points around each picture


def contact_sheet(
    images: list[InputImage], columns: int, captions: bool, ctx: RenderContext
) -> Table:
    columns = min(columns, len(images))
    cell = ctx.page.frame_width / columns
    box = cell - 2 * _PAD
    # One picture may be at most a third of the frame high, so rows break between pages.
    box_height = min(box, ctx.page.frame_height / 3)
    cells: list[list[list[Flowable] | str]] = []
    for start in range(0, len(images), columns):
        row: list[list[Flowable] | str] = [
            _cell(image, box, box_height, captions, ctx)
            for image in images[start : start + columns]
        ]
        cells.append(row + [""] * (columns - len(row)))
    grid = Table(cells, colWidths=[cell] * columns, hAlign="CENTER")
    grid.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                ("LEFTPADDING", (0, 0), (-1, -1), _PAD),
                ("RIGHTPADDING", (0, 0), (-1, -1), _PAD),
                ("TOPPADDING", (0, 0), (-1, -1), _PAD),
                ("BOTTOMPADDING", (0, 0), (-1, -1), _PAD),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
            ]
        )
    )
    return grid


def _cell(
    image: InputImage, width: float, height: float, captions: bool, ctx: RenderContext
) -> list[Flowable]:
    picture: list[Flowable] = [image_flowable(image, width, height)]
    if not captions:
        return picture
    caption = f"{image.name}\n{image.width}\u00d7{image.height} px"  # the multiplication sign
    return [*picture, para(caption, ctx.styles.caption)]
