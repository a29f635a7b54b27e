"""Persistent jobs survive a broker restart, and the worker reconnects by itself."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker, start_broker_app, stop_broker_app
from tests.support.processes import ServiceProcess

WORKER = "tests.support.scripted_worker"


@pytest.mark.broker_restart
def test_confirmed_jobs_survive_a_broker_restart_and_the_worker_carries_on(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    worker: ServiceProcess = spawn(WORKER)
    worker.wait_logged("consuming")
    jobs = [Job(type="resize", params={"sleep": 1}) for _ in range(5)]
    events = broker.events()
    for j in jobs:
        broker.publish_job(j)  # confirmed: the broker has written it down
    events.wait_for(jobs[0].id, "job.started")

    try:
        stop_broker_app()
    finally:
        start_broker_app()
    worker.wait_logged("connection_lost", timeout=30)
    worker.wait_logged("consuming", count=2, timeout=60)

    after = TestBroker(settings)
    try:
        task_queue = after.names.task_queue("resize")
        manifests = [settings.blob_dir / "outputs" / j.id / "manifest.json" for j in jobs]
        after.wait_until(lambda: all(m.exists() for m in manifests), 60, "every job's outputs")
        after.wait_until(lambda: after.depth(task_queue) == 0, 30, "an empty task queue")
        assert after.depth(after.names.dead_queue) == 0
        # The durable audit queue kept every event, across the restart too.
        recorded = [b for _, b in after.drain(after.names.audit_events_queue)]
        succeeded = {
            j.id for j in jobs if any(j.id.encode() in b and b"succeeded" in b for b in recorded)
        }
        assert succeeded == {j.id for j in jobs}
    finally:
        after.connection.close()
