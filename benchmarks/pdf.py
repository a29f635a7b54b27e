"""PDF: a 10-page `document` through the render handler (of each tree, on a real folder blob
store), against plain reportlab building the same story with the same embedded font, styles
and table look (no validation, no page header or footer, no durable write), with binary
streams as the renderer makes them and with ASCII85 (reportlab's default). Each contender
runs in a process of its own per round (benchmarks/pdf_probe.py, the tree's own probe for
its handler), rounds interleaved; wall and CPU time (CPU time is steadier on a busy
machine). The goal's ratio is taken with the handler and plain reportlab taking turns in one
process (benchmarks/pdf_paired.py)."""

from __future__ import annotations

import json
import statistics
import sys

from benchmarks.stats import RATIO_UNIT, Figure, Section, anchored
from benchmarks.trees import CURRENT, Tree, Trees

CONTENDERS = {
    "handler": "render handler",
    "plain": "plain reportlab, same story and font",
    "plain-a85": "plain reportlab, ASCII85 on",
}
OLD_SECTION = "tests.bench.pdf"  # trees before the probe measured in-process, one table each
Docs = dict[str, list[float]]


def _pdf_module(tree: Tree) -> str | None:
    return tree.bench_module("pdf_probe") or tree.module(OLD_SECTION)


def measure(tree: Tree, module: str, approach: str, docs: int) -> Docs:
    """`docs` documents made by one fresh process of `tree`: wall_ms, cpu_ms, pages."""
    if module != OLD_SECTION:
        return dict(json.loads(tree.output(module, approach, str(docs))))
    # The old section prints its table (median (min-max) per contender) after a warm-up:
    # one document per process makes each printed median one document's time.
    found: Docs = {"wall_ms": [], "cpu_ms": [], "pages": []}
    for _ in range(docs):
        for line in tree.output(module, "1").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 4 and cells[0] == CONTENDERS[approach]:
                key = {"ms wall": "wall_ms", "ms CPU": "cpu_ms"}[cells[2]]
                found[key].append(float(cells[1].split()[0]))
    if len(found["wall_ms"]) != docs:
        raise RuntimeError(f"{module} in {tree.root}: no {CONTENDERS[approach]!r} rows")
    return found


def paired_ratio(tree: Tree, module: str, docs: int) -> float:
    """The handler's CPU per document over plain reportlab's, both taking turns in one fresh
    process of `tree` (benchmarks/pdf_paired.py): the median of each, divided."""
    made = json.loads(tree.output(module, str(docs)))
    return statistics.median(made["handler"]) / statistics.median(made["plain"])


def pdf_section(trees: Trees, runs: int, docs: int) -> Section:
    probes = trees.find("PDF probe", _pdf_module)
    pairs = trees.find("paired PDF probe", lambda tree: tree.bench_module("pdf_paired"))
    wall = anchored([Figure(w, "ms wall", higher_is_better=False) for w in CONTENDERS.values()])
    cpu = anchored([Figure(w, "ms CPU", higher_is_better=False) for w in CONTENDERS.values()])
    paired = Figure(
        "render handler over plain reportlab, CPU, taking turns in one process",
        RATIO_UNIT,
        higher_is_better=False,
    )
    pages: set[int] = set()
    for run in range(runs):
        for i, approach in enumerate(CONTENDERS):
            # only the handler is jobsuite's: plain reportlab is the same in every tree
            own = approach == "handler"
            for tree, module in probes.in_turn(run) if own else [(CURRENT, probes.here)]:
                made = measure(tree, module, approach, docs)
                wall[i].of(tree).samples += made["wall_ms"]
                cpu[i].of(tree).samples += made["cpu_ms"]
                pages.update(int(p) for p in made["pages"])
                ms = statistics.median(made["wall_ms"])
                print(f"  pdf {tree.named(approach)}: {ms:.0f} ms", file=sys.stderr, flush=True)
        for tree, module in pairs.in_turn(run):
            ratio = paired_ratio(tree, module, docs)
            paired.of(tree).samples.append(ratio)
            print(f"  pdf {tree.named('paired')}: {ratio:.3f}x", file=sys.stderr, flush=True)
    notes = [
        f"one `document` of {'/'.join(map(str, sorted(pages)))} pages (headings, paragraphs,"
        f" bullets, tables) per document; {docs} documents per process after one warm-up,"
        f" {runs} processes per contender, interleaved",
        "ratio = median / the handler's (below 1 = plain reportlab is faster)",
        "taking turns in one process: each process makes the document with both, alternating,"
        f" {docs} times each after a warm-up; its median handler CPU over its median plain"
        " reportlab CPU is one sample (a process makes all its documents fast or all slow on"
        " this machine, which moves the separate processes' medians by a third)",
        *probes.notes,
        *pairs.notes,
    ]
    old = [t for t, module in probes.found.items() if module == OLD_SECTION]
    notes += [
        f"{t.label}: its handler measured by its own {OLD_SECTION} (it has no PDF probe), one"
        " document per process after a warm-up of each contender"
        for t in old
    ]
    return Section("PDF: a 10-page document", [*wall, *cpu, paired], notes)
