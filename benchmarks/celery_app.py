"""The Celery anchor: a no-op task on its own queue of the bench namespace, a quorum queue
(the durability of ours) or, with BENCH_CELERY_QUEUE=classic, Celery's default classic queue.

JOBSUITE_NAMESPACE=… [BENCH_CELERY_QUEUE=classic] celery -A benchmarks.celery_app worker …
"""

from __future__ import annotations

import os
from typing import Literal

from celery import Celery
from kombu import Exchange, Queue

QueueType = Literal["quorum", "classic"]


def queue_name(namespace: str) -> str:
    return f"{namespace}.celery"


def make_app(namespace: str, amqp_url: str, queue_type: QueueType = "quorum") -> Celery:
    queue = queue_name(namespace)
    # Classic: Celery's default (durable, no arguments); quorum: replicated, fsynced.
    arguments = {"x-queue-type": "quorum"} if queue_type == "quorum" else {}
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
                queue_arguments=arguments,
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
    "classic" if os.environ.get("BENCH_CELERY_QUEUE") == "classic" else "quorum",
)
