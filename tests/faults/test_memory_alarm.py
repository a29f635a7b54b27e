"""A RabbitMQ memory alarm: the broker blocks every publisher. The gateway answers 503 at once
(it drops a connection the moment the broker blocks it): the job it had sent is in doubt and
says so, and jobs after it are refused without being sent while the alarm holds. A consumer
that only consumes (the audit service) keeps draining. Once the alarm clears, the in-doubt
job's Idempotency-Key sends that same job again, and new jobs are taken.

The watermark is always set back in a `finally`."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from shared.amqp import BLOCKED_CONNECTION_TIMEOUT_S
from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.audit import make_event, new_job_id, publish_event, start_audit
from tests.support.broker import TestBroker, rabbitmqctl
from tests.support.gateway import start_gateway


def submit(http: httpx.Client, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"template": "document", "data": {"blocks": [key or "x"]}}
    return http.post("/jobs/render", json=body, headers=headers)


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
