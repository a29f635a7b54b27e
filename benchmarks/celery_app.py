"""The Celery anchor: a no-op task, and a resize task doing what a resizer job does (the
resizer's own handler on the folder blob store at BLOB_DIR, as benchmarks/dramatiq_app.py),
on its own queue of the bench namespace, a quorum queue (the durability of ours) or, with
BENCH_CELERY_QUEUE=classic, Celery's default classic queue.

    JOBSUITE_NAMESPACE=… [BLOB_DIR=…] [BENCH_CELERY_QUEUE=classic]
    celery -A benchmarks.celery_app worker …
"""

from __future__ import annotations

import os
from typing import Literal

import pika
from celery import Celery
from kombu import Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    CELERY_DELAYED_DELIVERY_EXCHANGE,
    MAX_LEVEL,
    level_name,
)

from benchmarks.resize_task import resize_message

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
    app.task(name="resize")(resize_message)
    return app


def _noop() -> None:
    return None


def delayed_delivery_exists(channel: pika.adapters.blocking_connection.BlockingChannel) -> bool:
    """Whether the vhost holds Celery's delayed-delivery topology (a quorum-queue worker
    declares it at start: 28 queues and 29 exchanges, named without any namespace). Takes a
    channel of its own: the broker closes it when the exchange is not there, else this does."""
    try:
        channel.exchange_declare(CELERY_DELAYED_DELIVERY_EXCHANGE, passive=True)
    except pika.exceptions.ChannelClosedByBroker:  # 404: not there
        return False
    channel.close()
    return True


def delete_delayed_delivery(channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
    """Delete Celery's delayed-delivery topology; only when the bench's worker made it (a
    Celery of the user's in this vhost may be using it)."""
    for level in range(MAX_LEVEL + 1):
        channel.queue_delete(level_name(level))
        channel.exchange_delete(level_name(level))
    channel.exchange_delete(CELERY_DELAYED_DELIVERY_EXCHANGE)


app = make_app(
    os.environ.get("JOBSUITE_NAMESPACE", "bench"),
    os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "classic" if os.environ.get("BENCH_CELERY_QUEUE") == "classic" else "quorum",
)
