"""One way of making the 10-page PDF, in a process of its own (its tree's render handler, or
plain reportlab for comparison):

    python -m benchmarks.pdf_probe handler|plain|plain-a85 DOCS

Makes the document once to warm up (fonts registered, modules imported) and then DOCS times,
and prints JSON: wall and CPU ms per document and the page counts."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from pypdf import PdfReader
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
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


@contextmanager
def _ascii85() -> Iterator[None]:
    saved = rl_config.useA85
    rl_config.useA85 = 1
    try:
        yield
    finally:
        rl_config.useA85 = saved


def handler(data: dict[str, Any], folder: Path) -> Make:
    """The render handler of this tree on a real folder blob store."""
    from services.renderer.handler import render_job
    from services.renderer.limits import RenderLimits
    from shared.blobs import FolderBlobStore
    from shared.messages import Job

    store = FolderBlobStore(folder)

    def make() -> bytes:
        job = Job(type="render", params={"template": "document", "data": data})
        (key,) = render_job(job, store, RenderLimits())
        return store.read_bytes(key)

    return make


def plain(data: dict[str, Any], _folder: Path) -> Make:
    return lambda: plain_reportlab(data)


def plain_a85(data: dict[str, Any], _folder: Path) -> Make:
    def make() -> bytes:
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
        for _ in range(docs):
            started, started_cpu = time.perf_counter(), time.process_time()
            pdf = make()
            result["wall_ms"].append((time.perf_counter() - started) * 1000)
            result["cpu_ms"].append((time.process_time() - started_cpu) * 1000)
            result["pages"].append(len(PdfReader(io.BytesIO(pdf)).pages))
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
