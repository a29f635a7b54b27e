"""A RabbitMQ memory alarm: the broker blocks every publisher. The gateway answers 503 within
its blocked-connection timeout and stays responsive, a consumer that only consumes (the
audit service) keeps draining, and jobs are taken again once the alarm clears.

The watermark is always set back in a `finally`."""

from __future__ import annotations

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


def submit(http: httpx.Client) -> httpx.Response:
    return http.post("/jobs/render", json={"template": "document", "data": {"blocks": ["x"]}})


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
            refused = submit(http)
            took = time.monotonic() - began

            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"]
            # One blocked publish, a reconnect and one more: bounded, not a hang.
            assert took < 2 * BLOCKED_CONNECTION_TIMEOUT_S + 10, took
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
