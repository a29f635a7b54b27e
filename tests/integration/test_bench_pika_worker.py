"""The bench's plain-pika worker with the same work (benchmarks/pika_events_worker.py,
BENCH_WORK=resize): against the real broker it resizes each job into the blob store, sends the
events it is told to per job, acks every job, and ends cleanly on SIGTERM. It is the floor the
concurrency section sets beside the runner, so a worker that skipped the work or the events
would make that floor a lie."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli.bench_cmds import sample_image
from shared.config import Settings
from shared.messages import Job
from tests.support.broker import TestBroker
from tests.support.processes import service_env

ROOT = Path(__file__).resolve().parents[2]
INPUT = "inputs/bench/photo.jpg"
JOBS = 3


@pytest.mark.parametrize("events", [2, 1, 0])
def test_each_job_is_resized_with_its_events_then_acked(
    settings: Settings, broker: TestBroker, events: int
) -> None:
    source = settings.blob_dir / INPUT
    source.parent.mkdir(parents=True)
    source.write_bytes(sample_image((640, 480)))
    watcher = broker.events()
    jobs = [Job(type="resize", params={"width": 160}, inputs=[INPUT]) for _ in range(JOBS)]
    for job in jobs:
        broker.publish_job(job)
    queue = broker.names.task_queue("resize")
    env = service_env(settings, BENCH_WORK="resize", BENCH_EVENTS_PER_JOB=str(events))
    worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.pika_events_worker"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    outputs = [settings.blob_dir / f"outputs/{job.id}/160x120.jpg" for job in jobs]
    try:
        broker.wait_until(lambda: all(p.exists() for p in outputs), 30, "every job resized")
        broker.wait_until(lambda: len(watcher.poll()) >= events * JOBS, 10, "the events")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    for path in outputs:
        with Image.open(io.BytesIO(path.read_bytes())) as out:
            assert out.size == (160, 120)
    sent = [e["event"] for e in watcher.poll()]
    assert sent == ["job.started", "job.succeeded"][2 - events :] * JOBS
    assert broker.depth(queue) == 0  # every job acked: none came back when it disconnected


@pytest.mark.parametrize(
    ("setting", "value"), [("BENCH_WORK", "render"), ("BENCH_EVENTS_PER_JOB", "3")]
)
def test_a_setting_it_cannot_honour_is_refused_at_start(
    settings: Settings, setting: str, value: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.pika_events_worker"],
        cwd=ROOT,
        env=service_env(settings, **{setting: value}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert f"{setting}={value!r}" in done.stderr
