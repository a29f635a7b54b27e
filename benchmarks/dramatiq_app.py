"""The Dramatiq anchor: an actor doing what a resizer job does (the resizer's own handler on
the same blob store), on a queue of the bench namespace (Dramatiq's durable classic queue;
it acks after the actor returns, and its prefetch is twice its threads).

JOBSUITE_NAMESPACE=… BLOB_DIR=… python -m dramatiq benchmarks.dramatiq_app -p 2 -t 8 -Q …
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from benchmarks.resize_task import resize_message

ACTOR = "resize"


def queue_name(namespace: str) -> str:
    return f"{namespace}.dramatiq"


def make_broker(namespace: str, amqp_url: str) -> tuple[RabbitmqBroker, dramatiq.Actor]:
    """The broker and the resize actor, declared on it (the bench publishes with these too)."""
    broker = RabbitmqBroker(url=amqp_url, confirm_delivery=True)
    # The options go through the decorator form: the stubs take them only without `fn`.
    declare = dramatiq.actor(
        actor_name=ACTOR, queue_name=queue_name(namespace), broker=broker, max_retries=0
    )
    actor = declare(resize_message)
    return broker, actor


if "JOBSUITE_NAMESPACE" in os.environ:  # a worker started by the bench (not the bench itself)
    broker, _ = make_broker(os.environ["JOBSUITE_NAMESPACE"], os.environ["AMQP_URL"])
    dramatiq.set_broker(broker)
