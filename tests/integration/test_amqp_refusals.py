"""A confirm channel names the messages the broker refused (nacked, or returned as
unroutable) in its PublishNacked, so a worker can tell a refused event from a refused job
message (shared/worker/settle.py); against the real RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.amqp import Channel, Connection
from shared.errors import PublishNacked
from tests.support.broker import TestBroker


@pytest.fixture
def full_queue(broker: TestBroker) -> Iterator[str]:
    """A queue that takes one message and refuses the next (reject-publish)."""
    name = f"{broker.settings.namespace}.refusals"
    arguments = {"x-max-length": 1, "x-overflow": "reject-publish"}
    broker.channel.queue_declare(name, durable=True, arguments=arguments)
    try:
        yield name
    finally:
        broker.channel.queue_delete(name)


def _send(channel: Channel, queue: str, message_id: str) -> None:
    channel.publish_nowait("", queue, b"{}", message_id=message_id, message_type="probe")


def test_a_nacked_message_is_named_and_the_confirmed_ones_are_not(
    eager: Connection, full_queue: str
) -> None:
    channel = eager.channel(confirm=True)
    _send(channel, full_queue, "taken")
    _send(channel, full_queue, "refused")
    with pytest.raises(PublishNacked, match="probe refused: nacked") as e:
        channel.wait_for_confirms()
    assert e.value.refused == {"refused"}
    _send(channel, full_queue, "next")  # still full; the next wait names only its own
    with pytest.raises(PublishNacked) as again:
        channel.wait_for_confirms()
    assert again.value.refused == {"next"}


def test_a_returned_message_is_named(eager: Connection, broker: TestBroker) -> None:
    channel = eager.channel(confirm=True)
    _send(channel, f"{broker.settings.namespace}.no-such-queue", "lost")
    with pytest.raises(PublishNacked, match="returned as unroutable") as e:
        channel.wait_for_confirms()
    assert e.value.refused == {"lost"}
