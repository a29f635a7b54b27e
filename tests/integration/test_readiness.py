"""`make run`'s ready line waits for the workers: a worker is ready when its queue has as many
consumers as replicas were started (shared/readiness.py), checked on the real broker."""

from __future__ import annotations

from shared.config import Settings
from shared.readiness import consumer_probe
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker


def test_a_worker_is_ready_once_each_replica_consumes_its_queue(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    two = consumer_probe(settings, "resizer", 2)
    queue = broker.names.task_queue("resize")
    assert two.check() == f"0 of 2 consuming {queue}"

    spawn("services.resizer").wait_logged("consuming")
    assert two.check() == f"1 of 2 consuming {queue}"
    assert consumer_probe(settings, "resizer", 1).check() is None
    spawn("services.resizer").wait_logged("consuming")
    assert two.check() is None


def test_a_queue_not_declared_yet_is_not_ready(settings: Settings, rabbitmq: str) -> None:
    reason = consumer_probe(settings, "mailer", 1).check()  # nothing declared in this namespace
    assert reason is not None and "jobs.mail" in reason
