"""Resize: a 4000x3000 JPEG (and the same picture as a PNG) to an 800 px wide JPEG q85 through
the resizer's handler (of each tree), against naive Pillow and pyvips `thumbnail`. Each
approach runs in a process of its own per round (benchmarks/resize_probe.py, the tree's own
probe for its handler), rounds interleaved, so the peak RSS (VmHWM) it reports is its own.
The goal's ratio is taken with the handler and pyvips taking turns in one process
(benchmarks/resize_paired.py)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from PIL import Image

from benchmarks.stats import RATIO_UNIT, Figure, Section, anchored
from benchmarks.trees import CURRENT, Tree, Trees

SIZE = (4000, 3000)
APPROACHES = {
    "handler": "resizer handler",
    "pillow": "naive Pillow (open, resize LANCZOS, save)",
    "pyvips": "pyvips thumbnail",
}


def make_inputs(folder: Path) -> list[Path]:
    """A picture with gradients and noise (flat colour would make every decoder look fast)."""
    channels = [
        Image.radial_gradient("L").resize(SIZE),
        Image.effect_noise(SIZE, 24),
        Image.linear_gradient("L").rotate(90).resize(SIZE),
    ]
    picture = Image.merge("RGB", channels)
    jpeg, png = folder / "photo.jpg", folder / "photo.png"
    picture.save(jpeg, "JPEG", quality=90)
    picture.save(png, "PNG", compress_level=1)  # level 6 takes 7 s to write here
    return [jpeg, png]


def probe(tree: Tree, module: str, approach: str, source: Path, images: int) -> dict[str, Any]:
    """Run one approach in a fresh process of `tree`'s probe `module`:
    {"ms": [...], "base_mb": …, "peak_mb": …}."""
    return dict(json.loads(tree.output(module, approach, str(source), str(images))))


def _kind(source: Path) -> str:
    return {".jpg": "JPEG", ".png": "PNG"}[source.suffix]


def _lower(what: str, unit: str) -> Figure:
    return Figure(what, unit, higher_is_better=False)


def paired_ratio(tree: Tree, module: str, source: Path, images: int) -> float:
    """The handler's wall ms per image over pyvips', both taking turns in one fresh process
    of `tree` (benchmarks/resize_paired.py): the median of each, divided."""
    made = json.loads(tree.output(module, str(source), str(images)))
    return statistics.median(made["handler"]) / statistics.median(made["pyvips"])


def resize_section(trees: Trees, runs: int, images: int) -> Section:
    probes = trees.find("resize probe", lambda t: t.bench_module("resize_probe"))
    pairs = trees.find("paired resize probe", lambda t: t.bench_module("resize_paired"))
    base: dict[str, list[float]] = {CURRENT.named(a): [] for a in APPROACHES}
    groups: list[list[Figure]] = []
    with TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        sizes = [f"{_kind(s)} {s.stat().st_size / 2**20:.1f} MiB" for s in inputs]
        for source in inputs:
            kind = _kind(source)
            for unit in ("ms/image", "MiB peak RSS"):
                groups.append([_lower(f"{kind}: {w}", unit) for w in APPROACHES.values()])
        paired = [
            Figure(
                f"{_kind(s)}: resizer handler over pyvips thumbnail, taking turns in one process",
                RATIO_UNIT,
                higher_is_better=False,
            )
            for s in inputs
        ]
        for run in range(runs):
            for i, source in enumerate(inputs):
                for j, approach in enumerate(APPROACHES):
                    # only the handler is jobsuite's: the others are the same in every tree
                    own = approach == "handler"
                    for tree, module in probes.in_turn(run) if own else [(CURRENT, probes.here)]:
                        result = probe(tree, module, approach, source, images)
                        groups[2 * i][j].of(tree).samples += result["ms"]
                        groups[2 * i + 1][j].of(tree).samples.append(result["peak_mb"])
                        base.setdefault(tree.named(approach), []).append(result["base_mb"])
                        ms = statistics.median(result["ms"])
                        peak = result["peak_mb"]
                        what = tree.named(f"{_kind(source)} {approach}")
                        line = f"  resize {what}: {ms:.0f} ms, {peak:.0f} MiB peak"
                        print(line, file=sys.stderr, flush=True)
                for tree, module in pairs.in_turn(run):
                    ratio = paired_ratio(tree, module, source, images)
                    paired[i].of(tree).samples.append(ratio)
                    what = tree.named(f"{_kind(source)} paired")
                    print(f"  resize {what}: {ratio:.3f}x", file=sys.stderr, flush=True)
    notes = [
        f"inputs {SIZE[0]}x{SIZE[1]}: {', '.join(sizes)} (gradients + noise); output 800 px wide"
        f" JPEG q85 from both; {images} images per process after one warm-up, {runs} processes"
        " per approach and input, interleaved",
        "peak RSS = the whole process's VmHWM (interpreter and imports included); RSS after"
        " the imports: "
        + ", ".join(f"{a} {statistics.median(v):.0f} MiB" for a, v in base.items()),
        "ratio = median / the handler's median for the same input (below 1 = the other is"
        " faster or smaller); pyvips uses its own thread pool (both cores)",
        "taking turns in one process: each process makes the output with the handler and"
        f" pyvips, alternating, {images} times each after a warm-up; its median handler wall"
        " ms over its median pyvips wall ms is one sample (a process may run all its work fast"
        " or all slow on this machine, which moves the separate processes' medians)",
        *probes.notes,
        *pairs.notes,
    ]
    figures = [f for g in groups for f in anchored(g)]
    return Section("Resize 4000x3000 to 800 px", [*figures, *paired], notes)
