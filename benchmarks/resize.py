"""Resize: a 4000x3000 JPEG (and the same picture as a PNG) to an 800 px wide JPEG q85 through
the resizer's handler, against naive Pillow and pyvips `thumbnail`. Each approach runs in a
process of its own per round (benchmarks/resize_probe.py), rounds interleaved, so the peak
RSS (VmHWM) it reports is its own."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from PIL import Image

from benchmarks.stats import Figure, Section, anchored
from tests.support.processes import ROOT

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


def probe(approach: str, source: Path, images: int) -> dict[str, Any]:
    """Run one approach in a fresh process: {"ms": [...], "base_mb": …, "peak_mb": …}."""
    command = [sys.executable, "-m", "benchmarks.resize_probe", approach, str(source)]
    out = subprocess.run(
        [*command, str(images)], cwd=ROOT, capture_output=True, text=True, check=True, timeout=600
    )
    return dict(json.loads(out.stdout))


def _kind(source: Path) -> str:
    return {".jpg": "JPEG", ".png": "PNG"}[source.suffix]


def _lower(what: str, unit: str) -> Figure:
    return Figure(what, unit, higher_is_better=False)


def resize_section(runs: int, images: int) -> Section:
    base: dict[str, list[float]] = {a: [] for a in APPROACHES}
    groups: list[list[Figure]] = []
    with TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        sizes = [f"{_kind(s)} {s.stat().st_size / 2**20:.1f} MiB" for s in inputs]
        for source in inputs:
            kind = _kind(source)
            for unit in ("ms/image", "MiB peak RSS"):
                groups.append([_lower(f"{kind}: {w}", unit) for w in APPROACHES.values()])
        for _ in range(runs):
            for i, source in enumerate(inputs):
                for j, approach in enumerate(APPROACHES):
                    result = probe(approach, source, images)
                    groups[2 * i][j].samples += result["ms"]
                    groups[2 * i + 1][j].samples.append(result["peak_mb"])
                    base[approach].append(result["base_mb"])
                    ms = statistics.median(result["ms"])
                    peak = result["peak_mb"]
                    line = f"  resize {_kind(source)} {approach}: {ms:.0f} ms, {peak:.0f} MiB peak"
                    print(line, file=sys.stderr, flush=True)
    notes = [
        f"inputs {SIZE[0]}x{SIZE[1]}: {', '.join(sizes)} (gradients + noise); output 800 px wide"
        f" JPEG q85 from both; {images} images per process after one warm-up, {runs} processes"
        " per approach and input, interleaved",
        "peak RSS = the whole process's VmHWM (interpreter and imports included); RSS after"
        " the imports: "
        + ", ".join(f"{a} {statistics.median(v):.0f} MiB" for a, v in base.items()),
        "ratio = median / the handler's median for the same input (below 1 = the other is"
        " faster or smaller); pyvips uses its own thread pool (both cores)",
    ]
    return Section("Resize 4000x3000 to 800 px", [f for g in groups for f in anchored(g)], notes)
