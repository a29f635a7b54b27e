"""The Celery anchor: a no-op task on its own quorum queue of the bench namespace.

JOBSUITE_NAMESPACE=… celery -A benchmarks.celery_app worker -c 2 -P prefork …
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue


def queue_name(namespace: str) -> str:
    return f"{namespace}.celery"


def make_app(namespace: str, amqp_url: str) -> Celery:
    queue = queue_name(namespace)
    app = Celery("jobsuite_bench", broker=amqp_url)
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        worker_enable_remote_control=False,  # no pidbox queues left behind
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue,
        task_queues=[
            Queue(
                queue,
                Exchange(queue, type="direct"),
                routing_key=queue,
                queue_arguments={"x-queue-type": "quorum"},
            )
        ],
    )
    app.task(name="noop")(_noop)
    return app


def _noop() -> None:
    return None


app = make_app(
    os.environ.get("JOBSUITE_NAMESPACE", "bench"),
    os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
)
