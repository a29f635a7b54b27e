"""A bug in a job's course (not in its handler) on the real broker: the runner drops the
connection, the broker takes the job back, and after the reconnect the worker settles it and
goes on taking jobs, instead of holding an unsettled delivery (prefetch 1) for good."""

from __future__ import annotations

import threading
from typing import Any

from shared.blobs import FolderBlobStore, output_key
from shared.config import Settings
from shared.messages import Job
from shared.worker import Worker
from shared.worker.settle import Settler
from tests.support.broker import TestBroker


def test_a_bug_in_settling_reconnects_and_the_job_and_the_next_succeed(
    settings: Settings, broker: TestBroker, monkeypatch: Any
) -> None:
    runs: list[str] = []

    def handler(job: Job, blobs: Any) -> list[str]:
        runs.append(job.id)
        return [blobs.write_bytes(output_key(job.id, "out.txt"), b"done")]

    real_succeed = Settler.succeed
    bugs = [RuntimeError("a bug in settling, once")]

    def succeed_after_a_bug(self: Settler, *args: Any) -> str:
        if bugs:
            raise bugs.pop()
        return real_succeed(self, *args)

    monkeypatch.setattr(Settler, "succeed", succeed_after_a_bug)
    worker = Worker(
        settings,
        service="tester",
        handlers={"resize": handler},
        blobs=FolderBlobStore(settings.blob_dir),
        instance="h:1",
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    events = broker.events()
    thread.start()
    try:
        first, second = Job(type="resize"), Job(type="resize")
        broker.publish_job(first)
        events.wait_for(first.id, "job.succeeded", timeout=20)
        broker.publish_job(second)
        events.wait_for(second.id, "job.succeeded", timeout=20)
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert not bugs, "the bug was met"
    # The first ran once: its redelivery found its manifest and only settled.
    assert runs == [first.id, second.id]
    assert len(events.of(first.id, "job.started")) == 2
    assert broker.depth(broker.names.task_queue("resize")) == 0
