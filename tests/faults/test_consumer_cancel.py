"""A consumer the broker cancels (here: its queue deleted under it; RabbitMQ does the same on
some failovers) is noticed at once, and the worker subscribes again on a fresh connection.

RabbitMQ 3.10 enforces its consumer timeout by closing the channel (checked once a minute),
which the worker treats like any lost channel; per-queue `x-consumer-timeout` needs 3.12+.
JOB_TIME_LIMIT (tests/integration/test_job_time_limit.py) is meant to fire long before either."""

from __future__ import annotations

from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.scripted_worker import MODULE as WORKER
from tests.support.scripted_worker import scripted_job as job


def test_a_cancelled_consumer_is_noticed_and_subscribes_again(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    worker = spawn(WORKER)
    worker.wait_logged("consuming")
    queue = broker.names.task_queue("resize")

    broker.channel.queue_delete(queue)

    worker.wait_logged("connection_lost", timeout=10)
    (lost,) = worker.logged("connection_lost")
    assert "cancelled the consumer" in lost["error"]
    worker.wait_logged("consuming", count=2, timeout=30)  # the queue declared again
    after = job()
    broker.publish_job(after)
    events.wait_for(after.id, "job.succeeded", timeout=15)
    assert broker.consumers(queue) == 1
