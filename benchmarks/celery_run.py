"""A Celery worker of the bench (benchmarks/celery_app.py) as a contender: its queue filled
with `jobs` tasks, then prefork 2 started on it (acks late, prefetch multiplier 1), and
everything it made in the vhost deleted after. Celery is imported only when a worker is
asked for, so the sections that use this run, without Celery rows, where it is not installed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from benchmarks.drain import fill, stop
from benchmarks.trees import CURRENT
from tests.support.broker import AMQP_URL, TestBroker
from tests.support.processes import service_env

if TYPE_CHECKING:
    from benchmarks.celery_app import QueueType


def celery_available() -> bool:
    try:
        import celery as _celery  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def celery_workers(
    broker: TestBroker,
    queue_type: QueueType,
    jobs: int,
    task: str,
    args: Callable[[int], tuple[Any, ...]] = lambda _i: (),
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """The queue's name and the worker's process, `jobs` of `task` (the i-th with `args(i)`)
    waiting in the queue when it starts. The worker's environment is the namespace's
    (`service_env`: its BLOB_DIR is the store the `resize` task writes to)."""
    from benchmarks.celery_app import (
        delayed_delivery_exists,
        delete_delayed_delivery,
        make_app,
        queue_name,
    )

    namespace = broker.settings.namespace
    queue = queue_name(namespace)
    app = make_app(namespace, AMQP_URL, queue_type)
    ours_to_delete = not delayed_delivery_exists(broker.connection.channel())
    try:
        with app.producer_or_acquire() as producer:
            send = app.send_task
            fill(broker, queue, jobs, lambda i: send(task, args=args(i), producer=producer))
        argv = ["-A", "benchmarks.celery_app", "worker", "-c", "2", "-P", "prefork"]
        argv += ["-Q", queue, "--loglevel", "WARNING", "--without-gossip"]
        argv += ["--without-mingle", "--without-heartbeat"]
        worker_env = service_env(broker.settings, BENCH_CELERY_QUEUE=queue_type)
        procs = [CURRENT.start("celery", *argv, env=worker_env)]
        try:
            yield queue, procs
        finally:
            stop(procs)
    finally:
        channel = broker.connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
        if ours_to_delete:
            delete_delayed_delivery(channel)
        app.close()
