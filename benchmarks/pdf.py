"""PDF: a 10-page `document` through the render handler (on a real folder blob store), against
plain reportlab building the same story (standard fonts, no validation, no escaping, no page
decoration), with and without ASCII85 (reportlab's default, which the renderer turns off).
One process, contenders interleaved document by document; wall and CPU time (CPU time is
steadier on a busy machine).

    .venv/bin/python -m benchmarks.pdf [runs]
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Table

from benchmarks.stats import Figure, Section, anchored
from services.renderer.handler import render_job
from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore
from shared.messages import Job

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
    """The same story with reportlab's sample styles: what the handler adds is the rest."""
    styles = getSampleStyleSheet()
    story: list[Any] = [Paragraph(data["title"], styles["Title"])]
    for block in data["blocks"]:
        if isinstance(block, str):
            story.append(Paragraph(block, styles["BodyText"]))
        elif "heading" in block:
            story.append(Paragraph(block["heading"], styles["Heading1"]))
        elif "bullets" in block:
            items = [ListItem(Paragraph(b, styles["BodyText"])) for b in block["bullets"]]
            story.append(ListFlowable(items, bulletType="bullet"))
        else:
            table = block["table"]
            story.append(Table([table["header"], *table["rows"]], repeatRows=1))
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=data["title"]).build(story)
    return buffer.getvalue()


def _timed(work: Callable[[], bytes], wall: Figure, cpu: Figure) -> int:
    """Run once, add its wall and CPU ms to the figures; return the PDF's page count."""
    started, started_cpu = time.perf_counter(), time.process_time()
    pdf = work()
    wall.samples.append((time.perf_counter() - started) * 1000)
    cpu.samples.append((time.process_time() - started_cpu) * 1000)
    return len(PdfReader(io.BytesIO(pdf)).pages)


@contextmanager
def _ascii85() -> Iterator[None]:
    saved = rl_config.useA85
    rl_config.useA85 = 1
    try:
        yield
    finally:
        rl_config.useA85 = saved


def pdf_section(runs: int) -> Section:
    data = sample_data()
    with tempfile.TemporaryDirectory() as folder:
        store = FolderBlobStore(Path(folder))

        def through_handler() -> bytes:
            job = Job(type="render", params={"template": "document", "data": data})
            (key,) = render_job(job, store, RenderLimits())
            return store.read_bytes(key)

        def plain_a85() -> bytes:
            with _ascii85():
                return plain_reportlab(data)

        contenders: dict[str, Callable[[], bytes]] = {
            "render handler": through_handler,
            "plain reportlab": lambda: plain_reportlab(data),
            "plain reportlab, ASCII85 on": plain_a85,
        }
        wall = anchored([Figure(name, "ms wall", higher_is_better=False) for name in contenders])
        cpu = anchored([Figure(name, "ms CPU", higher_is_better=False) for name in contenders])
        for work in contenders.values():
            work()  # warm up: fonts registered, modules imported
        pages: set[int] = set()
        for _ in range(runs):
            for i, work in enumerate(contenders.values()):
                pages.add(_timed(work, wall[i], cpu[i]))
    notes = [
        f"one `document` of {'/'.join(map(str, sorted(pages)))} pages (headings, paragraphs,"
        " bullets, tables)"
        f" per run, {runs} runs per contender",
        "ratio = median / the handler's (below 1 = plain reportlab is faster)",
    ]
    return Section("PDF: a 10-page document", [*wall, *cpu], notes)


if __name__ == "__main__":
    print(pdf_section(int(sys.argv[1]) if len(sys.argv) > 1 else 5).markdown())
