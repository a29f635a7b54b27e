"""`python -m services.renderer.bench`: seconds per 10-page `document` PDF through the render
handler, against plain reportlab building the same story (standard fonts, no validation,
no escaping, no page decoration), median of 5 runs each in one process."""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Table

from services.renderer.handler import render_job
from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore
from shared.messages import Job

RUNS = 5
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


def median_seconds(work: Callable[[], bytes]) -> tuple[float, float, int]:
    """Median wall-clock and CPU seconds (CPU time is steadier on a busy machine), and pages."""
    work()  # warm up: fonts registered, modules imported
    wall, cpu, pages = [], [], 0
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        pdf = work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
    return statistics.median(wall), statistics.median(cpu), pages


def main() -> None:
    data = sample_data()
    with tempfile.TemporaryDirectory() as folder:
        store = FolderBlobStore(Path(folder))

        def through_handler() -> bytes:
            job = Job(type="render", params={"template": "document", "data": data})
            (key,) = render_job(job, store, RenderLimits())
            return store.read_bytes(key)

        handler = median_seconds(through_handler)
    plain = median_seconds(lambda: plain_reportlab(data))
    rl_config.useA85 = 1  # reportlab's default, which the renderer turns off
    plain_a85 = median_seconds(lambda: plain_reportlab(data))
    rl_config.useA85 = 0
    for name, (wall, cpu, pages) in (
        ("handler", handler),
        ("plain reportlab", plain),
        ("plain reportlab, ASCII85 on", plain_a85),
    ):
        print(f"{name:28} {wall:.3f} s wall  {cpu:.3f} s CPU  ({pages} pages)")


if __name__ == "__main__":
    main()
