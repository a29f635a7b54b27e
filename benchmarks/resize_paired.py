"""The resizer's handler and pyvips `thumbnail` taking turns in one process (the pair the
resize goal compares), so that both meet the same process:

    python -m benchmarks.resize_paired INPUT IMAGES

As with the PDF pair (benchmarks/pdf_paired.py): on this machine a process may run all its
work fast or all slow, which moved the separate processes' ratio for the PNG between 1.35x
and 1.77x with no resizer change. Warms up both, then makes IMAGES 800 px JPEGs from INPUT
with each, alternating (which goes first swaps every round), and prints JSON: the wall ms of
each image of each (pyvips runs on its own threads, so wall time, as in the separate runs)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.resize_probe import Approach, handler, pyvips


def main(source: Path, images: int) -> dict[str, list[float]]:
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        makers: dict[str, Approach] = {
            "handler": handler(source, folder),
            "pyvips": pyvips(source, folder),
        }
        out = folder / "out.jpg"
        for make in makers.values():
            make(source, out)  # warm up
        wall_ms: dict[str, list[float]] = {name: [] for name in makers}
        for round_ in range(images):
            order = list(makers) if round_ % 2 == 0 else list(makers)[::-1]
            for name in order:
                started = time.perf_counter()
                makers[name](source, out)
                wall_ms[name].append((time.perf_counter() - started) * 1000)
    return wall_ms


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
