"""The render handler and plain reportlab taking turns in one process (the pair the PDF goal
compares), so that both meet the same process:

    python -m benchmarks.pdf_paired DOCS

On this machine a process makes all its documents fast or all slow (plain reportlab: about
55 or 85-100 ms each, whichever CPU it is pinned to), which moves a median of separate
processes by a third; within one process the two move together. Warms up both, then makes
DOCS documents of each, alternating (which goes first swaps every round), and prints JSON:
the CPU ms of each document of each."""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.pdf_probe import Make, handler, plain, sample_data


def main(docs: int) -> dict[str, list[float]]:
    with TemporaryDirectory() as tmp:
        data = sample_data()
        makers: dict[str, Make] = {
            "handler": handler(data, Path(tmp)),
            "plain": plain(data, Path(tmp)),
        }
        for make in makers.values():
            make()  # warm up
        gc.collect()  # as pdf_probe and the renderer do once started
        gc.freeze()
        cpu_ms: dict[str, list[float]] = {name: [] for name in makers}
        for round_ in range(docs):
            order = list(makers) if round_ % 2 == 0 else list(makers)[::-1]
            for name in order:
                started = time.process_time()
                makers[name]()
                cpu_ms[name].append((time.process_time() - started) * 1000)
    return cpu_ms


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
