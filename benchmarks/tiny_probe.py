"""The tiny end-to-end job's work alone: the resizer's handler making one 160 px JPEG of the
640x480 sample (benchmarks/load.py's tiny job) on a blob folder on tmpfs, in this process:

    python -m benchmarks.tiny_probe JOBS

One job to warm up, then JOBS jobs, each on an input of its own; prints nothing. What
`instructions.py` counts under callgrind."""

from __future__ import annotations

import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.instructions import TMPFS
from cli.bench_cmds import sample_image
from services.resizer.handler import resize_job
from shared.blobs import FolderBlobStore, input_key
from shared.config import Settings
from shared.jobtypes.resize import ResizeLimits
from shared.messages import Job

TINY_IMAGE = (640, 480)
WIDTH = 160


def main(jobs: int) -> None:
    with TemporaryDirectory(dir=TMPFS if TMPFS.is_dir() else None) as tmp:
        store = FolderBlobStore(Path(tmp))
        limits = ResizeLimits.from_settings(Settings())
        image = sample_image(TINY_IMAGE)
        for i in range(jobs + 1):  # the first warms up: codecs loaded, first allocations made
            key = store.write_bytes(input_key(f"tiny-{i}", "in.jpg"), image)
            resize_job(Job(type="resize", params={"width": WIDTH}, inputs=[key]), store, limits)


if __name__ == "__main__":
    main(int(sys.argv[1]))
