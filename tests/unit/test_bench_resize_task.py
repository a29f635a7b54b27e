"""The anchors' task (Celery's and Dramatiq's, benchmarks/resize_task.py) does a resize job's
work: from a job's message body, with the blob store BLOB_DIR names in its environment, the
resized output lands where the resizer puts it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from cli.bench_cmds import sample_image
from shared.messages import Job, encode

ROOT = Path(__file__).resolve().parents[2]
TASK = (
    "import json, sys; from benchmarks.resize_task import resize_message as r;"
    " print(json.dumps(r(sys.argv[1])))"
)


def test_a_message_body_is_resized_into_the_store_named_by_blob_dir(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    (blobs / "inputs" / "bench").mkdir(parents=True)
    (blobs / "inputs" / "bench" / "photo.jpg").write_bytes(sample_image((640, 480)))
    job = Job(type="resize", params={"width": 160}, inputs=["inputs/bench/photo.jpg"])
    env = {**os.environ, "BLOB_DIR": str(blobs), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", TASK, encode(job).decode()],
        cwd=tmp_path,  # not the checkout: BLOB_DIR alone says where the store is
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    keys = json.loads(done.stdout)
    assert keys == [f"outputs/{job.id}/160x120.jpg"]
    with Image.open(io.BytesIO((blobs / keys[0]).read_bytes())) as out:
        assert out.size == (160, 120)
