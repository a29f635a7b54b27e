"""A RabbitMQ memory alarm: the broker blocks every publisher. The gateway answers 503 at once
(it drops a connection the moment the broker blocks it): the job it had sent is in doubt and
says so, and jobs after it are refused without being sent while the alarm holds. A consumer
that only consumes (the audit service) keeps draining. Once the alarm clears, the in-doubt
job's Idempotency-Key sends that same job again, and new jobs are taken.

The watermark is always set back in a `finally`."""

from __future__ import annotations

import io
import json
import signal
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PIL import Image

from shared.amqp import BLOCKED_CONNECTION_TIMEOUT_S
from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.audit import make_event, new_job_id, publish_event, start_audit
from tests.support.broker import TestBroker, rabbitmqctl
from tests.support.gateway import start_gateway


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Two deliveries: a job is dead-lettered after its second lost delivery.
    return replace(settings, max_deliveries=2)


def submit(http: httpx.Client, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"template": "document", "data": {"blocks": [key or "x"]}}
    return http.post("/jobs/render", json=body, headers=headers)


def resize(http: httpx.Client) -> httpx.Response:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "PNG")
    return http.post("/jobs/resize", files={"file": ("a.png", out.getvalue())}, data={"width": "8"})


def memory_alarm_on() -> bool:
    return "memory" in rabbitmqctl("eval", "rabbit_alarm:get_alarms().")


@pytest.mark.broker_restart
def test_memory_alarm_gets_a_timely_503_and_jobs_flow_again_after(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    gateway = start_gateway(spawn, settings)
    audit = start_audit(spawn, settings, tmp_path / "audit")
    waiting = [new_job_id() for _ in range(20)]
    audit.process.signal(signal.SIGSTOP)  # events pile up for it
    for job_id in waiting:
        publish_event(broker, make_event("job.submitted", job_id))
    watermark = rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().").strip()
    with gateway.client(timeout=120) as http:
        assert submit(http).status_code == 202
        try:
            rabbitmqctl("set_vm_memory_high_watermark", "0.000001")
            broker.wait_until(memory_alarm_on, 30, "the memory alarm")

            began = time.monotonic()
            in_doubt = submit(http, key="alarm-1")
            took = time.monotonic() - began
            assert in_doubt.status_code == 503, in_doubt.text
            assert in_doubt.headers["Retry-After"]
            assert "may have been queued" in in_doubt.text, in_doubt.text
            assert "low on memory" in in_doubt.text, in_doubt.text
            # The broker says "blocked" as soon as the job arrives: no blocked-timeout wait.
            assert took < BLOCKED_CONNECTION_TIMEOUT_S / 2, took

            began = time.monotonic()
            refused = submit(http)
            assert refused.status_code == 503, refused.text
            assert "nothing was sent" in refused.text, refused.text
            assert time.monotonic() - began < 2  # refused without trying while the alarm holds
            health = http.get("/healthz", timeout=5)  # the request threads are free
            assert health.status_code in (200, 503)
            audit.process.signal(signal.SIGCONT)
            # Consuming and acking are never blocked: the audit service catches up.
            audit.wait_for(
                lambda: all(audit.job(j) is not None for j in waiting), "the backlog", 30
            )
            assert memory_alarm_on(), "the alarm held throughout"
        finally:
            rabbitmqctl("set_vm_memory_high_watermark", watermark)
            audit.process.signal(signal.SIGCONT)
        broker.wait_until(lambda: not memory_alarm_on(), 30, "the alarm to clear")
        broker.wait_until(lambda: submit(http).status_code == 202, 60, "a 202 again")
        job_id = in_doubt.text.split("did not confirm job ")[1].split(" ")[0]
        retried = submit(http, key="alarm-1")
        assert (retried.status_code, retried.json()["id"]) == (202, job_id), retried.text
        # The blocked copy may have got in (RabbitMQ 3.10 queues it): the retry sent that same
        # job again, which workers run once, never a second job for the same request.
        keyed = [
            props.message_id
            for props, body in broker.drain(broker.names.task_queue("render"))
            if json.loads(body)["params"]["data"]["blocks"] == ["alarm-1"]
        ]
        assert keyed and set(keyed) == {job_id}, keyed


@pytest.mark.broker_restart
def test_an_alarm_longer_than_the_blocked_timeout_costs_no_job_its_deliveries(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    """Workers publish events, so the broker blocks them too. Waiting out the alarm must not
    count as failed deliveries: with MAX_DELIVERIES=2, an alarm lasting three blocked
    timeouts would otherwise dead-letter the jobs in hand."""
    gateway = start_gateway(spawn, settings)
    resizer = spawn("services.resizer")
    resizer.wait_logged("consuming")
    resizer.signal(signal.SIGSTOP)
    watermark = rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().").strip()
    try:
        with gateway.client() as http:
            jobs = [resize(http).json()["id"] for _ in range(3)]
        rabbitmqctl("set_vm_memory_high_watermark", "0.000001")
        broker.wait_until(memory_alarm_on, 30, "the memory alarm")
        resizer.signal(signal.SIGCONT)
        time.sleep(3 * BLOCKED_CONNECTION_TIMEOUT_S + 2)
    finally:
        rabbitmqctl("set_vm_memory_high_watermark", watermark)
        resizer.signal(signal.SIGCONT)
    broker.wait_until(lambda: not memory_alarm_on(), 30, "the alarm to clear")
    manifests = [settings.blob_dir / "outputs" / job_id / "manifest.json" for job_id in jobs]
    broker.wait_until(lambda: all(m.exists() for m in manifests), 60, "every job's outputs")
    assert broker.depth(broker.names.dead_queue) == 0
