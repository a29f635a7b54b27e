"""The CPU-heavy end-to-end job's work with nothing of jobsuite around it: the resizer's
handler making four WebP sizes of the 800x600 JPEG (benchmarks/load.py's heavy job) on a
real folder blob store, in this process, no broker, no gateway:

    python -m benchmarks.heavy_probe JOBS START_AT

Warms up, waits until the wall clock reaches START_AT (epoch seconds, so that processes
started together run their jobs at the same time), does JOBS jobs and prints JSON: the wall
clock at the start and end of those jobs. Two of these at once, against one, is what two
processes of this work gain on this machine: the ceiling of the end-to-end scaling."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.load import HEAVY_IMAGE, HEAVY_SIZES
from cli.bench_cmds import sample_image
from services.resizer.handler import resize_job
from shared.blobs import FolderBlobStore, input_key
from shared.config import Settings
from shared.jobtypes.resize import ResizeLimits
from shared.messages import Job


def main(jobs: int, start_at: float) -> dict[str, float]:
    with TemporaryDirectory() as tmp:
        store = FolderBlobStore(Path(tmp))
        limits = ResizeLimits.from_settings(Settings())
        key = store.write_bytes(input_key("bench-input", "in.jpg"), sample_image(HEAVY_IMAGE))
        params = {"sizes": [{"width": int(s)} for s in HEAVY_SIZES], "format": "webp"}

        def one() -> None:
            resize_job(Job(type="resize", params=params, inputs=[key]), store, limits)

        one()  # warm up: codecs loaded, first allocations made
        time.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        for _ in range(jobs):
            one()
        return {"started": started, "ended": time.time()}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]))))
