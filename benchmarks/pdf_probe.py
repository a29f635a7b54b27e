"""One way of making the 10-page PDF, in a process of its own (its tree's render handler, or
plain reportlab for comparison):

    python -m benchmarks.pdf_probe handler|plain|plain-a85 DOCS

Makes the document once to warm up (fonts registered, modules imported) and then DOCS times,
and prints JSON: wall and CPU ms per document and the page counts."""

from __future__ import annotations

import gc
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from xml.sax.saxutils import escape

from pypdf import PdfReader
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Table

Make = Callable[[], bytes]
WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
]


def sample_data(sections: int = 9) -> dict[str, Any]:
    """Nine sections of headings, paragraphs, bullets and a table: ten A4 pages."""
    blocks: list[Any] = []
    for s in range(sections):
        text = " ".join(WORDS[(s + i) % len(WORDS)] for i in range(130))
        blocks += [{"heading": f"Section {s + 1}"}, text, text, text]
        blocks.append({"bullets": [f"point {b} of section {s + 1}" for b in range(4)]})
        rows = [[f"row {r}", r, r * 2.5, f"note {r}"] for r in range(12)]
        blocks.append({"table": {"header": ["name", "n", "value", "note"], "rows": rows}})
    return {"title": "Benchmark document", "blocks": blocks}


def plain_reportlab(data: dict[str, Any]) -> bytes:
    """The same story as the handler's, written with reportlab alone: the same embedded font
    (DejaVu Sans, the renderer's files) and paragraph styles, the same table look, A4 with
    20 mm margins, binary streams as the renderer sets them. What the handler adds is the
    rest: validation, escaping, checks, page header and footer, a durable write."""
    style = _plain_styles()
    story: list[Any] = [Paragraph(escape(data["title"]), style.title)]
    for block in data["blocks"]:
        if isinstance(block, str):
            story.append(Paragraph(escape(block), style.body))
        elif "heading" in block:
            story.append(Paragraph(escape(block["heading"]), style.headings[0]))
        elif "bullets" in block:
            items = [ListItem(Paragraph(escape(b), style.bullet)) for b in block["bullets"]]
            story.append(
                ListFlowable(items, bulletType="bullet", start="•", bulletFontName=REGULAR_FONT)
            )
        else:
            table = block["table"]
            rows = [table["header"], *([str(c) for c in row] for row in table["rows"])]
            story.append(Table(rows, repeatRows=1, hAlign="LEFT", style=_TABLE_LOOK))
    buffer = io.BytesIO()
    margin = 20 * mm
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=data["title"],
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
    ).build(story)
    return buffer.getvalue()


REGULAR_FONT, BOLD_FONT = "DejaVuSans", "DejaVuSans-Bold"
_TABLE_LOOK = [
    ("FONT", (0, 0), (-1, -1), REGULAR_FONT, 9, 11.5),
    ("FONT", (0, 0), (-1, 0), BOLD_FONT, 9, 11.5),
    ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#b0b0b0")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")),
    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [None, colors.HexColor("#f7f7f7")]),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 6),
    ("RIGHTPADDING", (0, 0), (-1, -1), 6),
    ("TOPPADDING", (0, 0), (-1, -1), 3),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ("ALIGN", (1, 0), (2, -1), "RIGHT"),
]


@dataclass(frozen=True)
class _PlainStyles:
    title: ParagraphStyle
    headings: tuple[ParagraphStyle, ...]
    body: ParagraphStyle
    bullet: ParagraphStyle


@cache
def _plain_styles() -> _PlainStyles:
    rl_config.useA85 = 0  # as the renderer does (ASCII85 on is the `plain-a85` contender)
    fonts = Path(__file__).resolve().parents[1] / "services" / "renderer" / "fonts"
    pdfmetrics.registerFont(TTFont(REGULAR_FONT, str(fonts / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD_FONT, str(fonts / "DejaVuSans-Bold.ttf")))
    body = ParagraphStyle("body", fontName=REGULAR_FONT, fontSize=10, leading=14, spaceAfter=6)
    heading = ParagraphStyle(
        "h1",
        body,
        fontName=BOLD_FONT,
        fontSize=15,
        leading=18.75,
        spaceBefore=12,
        spaceAfter=6,
        keepWithNext=1,
    )
    title = ParagraphStyle("title", body, fontName=BOLD_FONT, fontSize=20, leading=25)
    return _PlainStyles(title, (heading,), body, ParagraphStyle("bullet", body, spaceAfter=2))


@contextmanager
def _ascii85() -> Iterator[None]:
    saved = rl_config.useA85
    rl_config.useA85 = 1
    try:
        yield
    finally:
        rl_config.useA85 = saved


def handler(data: dict[str, Any], folder: Path) -> Make:
    """The render handler of this tree on a real folder blob store, as its service runs it
    (with the collection after each document where the tree has one)."""
    from services.renderer import handler as module
    from services.renderer.limits import RenderLimits
    from shared.blobs import FolderBlobStore
    from shared.messages import Job

    store = FolderBlobStore(folder)
    render = getattr(module, "render_and_collect", module.render_job)

    def make() -> bytes:
        job = Job(type="render", params={"template": "document", "data": data})
        (key,) = render(job, store, RenderLimits())
        return store.read_bytes(key)

    return make


def plain(data: dict[str, Any], _folder: Path) -> Make:
    return lambda: plain_reportlab(data)


def plain_a85(data: dict[str, Any], _folder: Path) -> Make:
    def make() -> bytes:
        _plain_styles()  # sets useA85 = 0 the first time: switch it on after that
        with _ascii85():
            return plain_reportlab(data)

    return make


APPROACHES: dict[str, Callable[[dict[str, Any], Path], Make]] = {
    "handler": handler,
    "plain": plain,
    "plain-a85": plain_a85,
}


def main(approach: str, docs: int) -> dict[str, list[float]]:
    result: dict[str, list[float]] = {"wall_ms": [], "cpu_ms": [], "pages": []}
    with TemporaryDirectory() as tmp:
        make = APPROACHES[approach](sample_data(), Path(tmp))
        make()  # warm up
        # As the renderer does once started: what is loaded by now is out of the collector's way.
        gc.collect()
        gc.freeze()
        for _ in range(docs):
            started, started_cpu = time.perf_counter(), time.process_time()
            pdf = make()
            result["wall_ms"].append((time.perf_counter() - started) * 1000)
            result["cpu_ms"].append((time.process_time() - started_cpu) * 1000)
            result["pages"].append(len(PdfReader(io.BytesIO(pdf)).pages))
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
