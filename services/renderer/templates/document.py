"""The `document` template: title, headings, paragraphs, lists, tables and input images."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    ListFlowable,
    ListItem,
    PageBreak,
    Spacer,
)

from services.renderer.fonts import REGULAR
from services.renderer.images import InputImage, image_flowable
from services.renderer.models import parse_data
from services.renderer.pages import PageDecor
from services.renderer.tables import check_table, table_flowable
from services.renderer.templates.base import RenderContext, Rendered
from services.renderer.templates.contact_sheet import contact_sheet
from services.renderer.text import para, paragraphs
from shared.errors import PermanentJobError
from shared.jobtypes.render import RenderParams
from shared.jobtypes.render_data import Block, DocumentData

CONTACT_SHEET = Block(images="all")
FILE_NAME = "document.pdf"


def render_document(params: RenderParams, ctx: RenderContext) -> Rendered:
    data = parse_data(DocumentData, params.data, "document")
    blocks = data.blocks
    # The visible heading comes from the data; params.title is the PDF's metadata only.
    title = data.title
    if not blocks:
        if not ctx.inputs:
            raise PermanentJobError(
                "invalid document data: data.blocks: give blocks, or image inputs for a "
                "contact sheet",
                kind="invalid_data",
            )
        blocks = [CONTACT_SHEET]
        title = title or "Contact sheet"
    _check_limits(blocks, ctx)
    story: list[Flowable] = []
    if title:
        story.append(para(title, ctx.styles.title))
    if data.subtitle:
        story.append(para(data.subtitle, ctx.styles.subtitle))
    elif title:
        story.append(Spacer(1, 8))
    for index, block in enumerate(blocks):
        story.extend(_block(block, f"data.blocks.{index}", ctx))
    return Rendered(
        story=story,
        file_name=FILE_NAME,
        title=title or "Document",
        decor=PageDecor(footer_left=data.title or ""),
    )


def _check_limits(blocks: list[Block], ctx: RenderContext) -> None:
    placed = 0
    for index, block in enumerate(blocks):
        if block.table is not None:
            check_table(block.table, ctx.limits, f"data.blocks.{index}.table")
        if block.image is not None:
            placed += 1
        elif block.images is not None:
            placed += len(ctx.inputs) if block.images == "all" else len(block.images)
    ctx.limits.check_images(placed)


def _block(block: Block, where: str, ctx: RenderContext) -> list[Flowable]:
    s = ctx.styles
    match block.kind:
        case "heading":
            assert block.heading is not None
            return [para(block.heading, s.headings[block.level - 1])]
        case "paragraph":
            assert block.paragraph is not None
            return list(paragraphs(block.paragraph, s.body))
        case "bullets" | "numbered":
            items = block.bullets if block.bullets is not None else block.numbered
            assert items is not None
            return [_list(items, numbered=block.numbered is not None, ctx=ctx)]
        case "table":
            assert block.table is not None
            return [table_flowable(block.table, ctx.page.frame_width, s), Spacer(1, 8)]
        case "image":
            assert block.image is not None
            image = ctx.image(ctx.input_key(block.image, f"{where}.image"))
            return [_single_image(image, block, ctx)]
        case "images":
            return [_grid(block, where, ctx), Spacer(1, 8)]
        case _:
            return [PageBreak()]


def _list(items: list[str], *, numbered: bool, ctx: RenderContext) -> ListFlowable:
    style = ctx.styles.bullet
    return ListFlowable(
        [ListItem(para(item, style)) for item in items],
        bulletType="1" if numbered else "bullet",
        start=None if numbered else "•",
        bulletFontName=REGULAR,
        bulletFontSize=style.fontSize,
        leftIndent=14,
        spaceAfter=6,
    )


def _single_image(image: InputImage, block: Block, ctx: RenderContext) -> Flowable:
    max_height = ctx.page.frame_height * 0.8
    if block.width_mm is None:
        picture = image_flowable(image, ctx.page.frame_width, max_height)
    else:  # an asked-for width may enlarge a small picture
        width = min(ctx.page.frame_width, block.width_mm * mm)
        picture = image_flowable(image, width, max_height, enlarge=True)
    parts: list[Flowable] = [picture]
    if block.caption:
        parts.append(para(block.caption, ctx.styles.caption))
    parts.append(Spacer(1, 8))
    return KeepTogether(parts)


def _grid(block: Block, where: str, ctx: RenderContext) -> Flowable:
    refs = range(len(ctx.inputs)) if block.images == "all" else block.images
    assert refs is not None
    images = [ctx.image(ctx.input_key(ref, f"{where}.images.{i}")) for i, ref in enumerate(refs)]
    if not images:
        raise PermanentJobError(f"{where}.images: the job has no inputs", kind="invalid_data")
    return contact_sheet(images, block.columns, block.captions, ctx)
