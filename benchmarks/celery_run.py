"""A Celery worker of the bench (benchmarks/celery_app.py) as a contender: its queue filled
with `jobs` tasks, then prefork 2 started on it (acks late, prefetch multiplier 1), and
everything it made in the vhost deleted after."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.celery_app import (
    QueueType,
    delayed_delivery_exists,
    delete_delayed_delivery,
    make_app,
    queue_name,
)
from benchmarks.drain import fill, stop
from benchmarks.trees import CURRENT
from tests.support.broker import AMQP_URL, TestBroker
from tests.support.processes import service_env

__all__ = ["QueueType", "celery_available", "celery_workers"]


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
    **env: str,
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """The queue's name and the worker's process, `jobs` of `task` (the i-th with `args(i)`)
    waiting in the queue when it starts; `env` for the worker (BLOB_DIR for `resize`)."""
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
        worker_env = service_env(broker.settings, BENCH_CELERY_QUEUE=queue_type, **env)
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
