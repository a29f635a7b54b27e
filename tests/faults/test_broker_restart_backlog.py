"""A backlog of confirmed jobs across a RabbitMQ restart: every job completes, and the
gateway and the workers reconnect by themselves (nobody restarts them)."""

from __future__ import annotations

import io
import signal

import httpx
import pytest
from PIL import Image

from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker, start_broker_app, stop_broker_app
from tests.support.gateway import start_gateway


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), "navy").save(out, "JPEG")
    return out.getvalue()


def submit(http: httpx.Client) -> httpx.Response:
    return http.post("/jobs/resize", files={"file": ("a.jpg", jpeg())}, data={"width": "100"})


@pytest.mark.broker_restart
def test_a_backlog_survives_a_broker_restart_and_everyone_reconnects(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    gateway = start_gateway(spawn, settings)
    resizers = [spawn("services.resizer") for _ in range(2)]
    for resizer in resizers:
        resizer.wait_logged("consuming")
        resizer.signal(signal.SIGSTOP)  # frozen: the jobs pile up in the queue
    try:
        with gateway.client() as http:
            backlog = [submit(http).json()["id"] for _ in range(20)]
        try:
            stop_broker_app()
        finally:
            start_broker_app()
    finally:
        for resizer in resizers:
            resizer.signal(signal.SIGCONT)

    with gateway.client() as http:
        broker.wait_until(lambda: submit(http).status_code == 202, 60, "the gateway to take jobs")
    manifests = [settings.blob_dir / "outputs" / job_id / "manifest.json" for job_id in backlog]
    after = TestBroker(settings)  # the fixture's connection died with the broker
    try:
        after.wait_until(lambda: all(m.exists() for m in manifests), 120, "every job's outputs")
        after.wait_until(lambda: after.depth(after.names.task_queue("resize")) == 0, 30, "empty")
        assert after.depth(after.names.dead_queue) == 0
    finally:
        after.connection.close()
    for process in [gateway.process, *resizers]:
        assert process.proc.poll() is None, f"{process.module} exited:\n{process.tail()}"
    for resizer in resizers:
        resizer.wait_logged("consuming", count=2)  # subscribed again on a new connection
