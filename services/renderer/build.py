"""A story of flowables into PDF bytes: page size, margins, metadata, decoration, page limit."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import partial

from reportlab import rl_config
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate
from reportlab.platypus.doctemplate import LayoutError

from services.renderer.limits import RenderLimits
from services.renderer.pages import DecoratedCanvas, PageDecor, PageLimitReached, PageSetup
from shared.errors import PermanentJobError

CREATOR = "jobsuite renderer"
# Binary (Flate only) streams instead of ASCII85 text: reportlab's ASCII85 encoder is pure
# Python without its optional C accelerator and took ~90 % of the time of a PDF with images
# (0.15 s per thumbnail); it also makes every stream a quarter larger. Process-wide, and
# the renderer is the only user of reportlab in its process.
rl_config.useA85 = 0


@dataclass(frozen=True)
class Metadata:
    title: str
    author: str = ""
    subject: str = ""


def build_pdf(
    story: list[Flowable],
    page: PageSetup,
    meta: Metadata,
    decor: PageDecor,
    limits: RenderLimits,
) -> bytes:
    buffer = io.BytesIO()
    # No frame padding: the margins asked for are where the text starts.
    frame = Frame(
        page.margin,
        page.margin,
        page.frame_width,
        page.frame_height,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    doc = BaseDocTemplate(
        buffer,
        pagesize=page.size,
        pageTemplates=[PageTemplate(id="page", frames=[frame])],
        title=meta.title,
        author=meta.author,
        subject=meta.subject,
        creator=CREATOR,
    )
    canvasmaker = partial(DecoratedCanvas, page=page, decor=decor, max_pages=limits.max_pdf_pages)
    try:
        doc.build(story, canvasmaker=canvasmaker)
    except PageLimitReached:
        raise limits.pages_exceeded() from None
    except LayoutError as e:
        raise PermanentJobError(
            "content does not fit on a page: a table row, image or unbroken line is larger "
            f"than the page's frame ({_first_line(e)})",
            kind="layout",
        ) from e
    return buffer.getvalue()


def _first_line(error: Exception, limit: int = 160) -> str:
    line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
