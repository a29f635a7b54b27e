"""A connection opened with `eager_send` (the workers') sends each write at once, in the write,
and can hold its writes to send them together at its next wait on the broker; against the
real RabbitMQ. A connection without it is left to pika's own way."""

from __future__ import annotations

import time

import pytest

from shared.amqp import Channel, Connection, connect_once
from shared.amqp.pika_private import connection_impl
from shared.config import Settings
from tests.support.broker import TestBroker

QUIET_S = 0.3  # long enough for a message sent to reach its queue on a local broker


def _unsent(connection: Connection) -> int:
    """Bytes written to the connection that it has not sent yet."""
    return int(connection_impl(connection._raw)._get_write_buffer_size())


@pytest.fixture
def queue(broker: TestBroker) -> str:
    return broker.names.dead_queue  # a queue no one consumes here; reached by its name


def _send(channel: Channel, queue: str, n: int) -> None:
    channel.publish_nowait("", queue, b"{}", message_id=f"m{n}", message_type="probe")


def test_an_eager_connection_sends_in_the_write(
    eager: Connection, broker: TestBroker, queue: str
) -> None:
    channel = eager.channel(confirm=True)
    _send(channel, queue, 1)
    assert _unsent(eager) == 0  # gone before any turn of the I/O loop
    broker.wait_until(lambda: broker.depth(queue) == 1, 5, "the message in its queue")
    channel.wait_for_confirms()


def test_held_writes_wait_for_the_next_wait_and_go_out_together(
    eager: Connection, broker: TestBroker, queue: str
) -> None:
    channel = eager.channel(confirm=True)
    channel.hold_output()
    _send(channel, queue, 1)
    _send(channel, queue, 2)  # held too: the hold lasts until the next wait
    held = _unsent(eager)
    time.sleep(QUIET_S)
    assert held > 0 and broker.depth(queue) == 0, "a held message left before a wait"

    channel.wait_for_confirms()  # sends them, then waits for both confirms

    assert _unsent(eager) == 0
    assert broker.depth(queue) == 2
    _send(channel, queue, 3)  # the hold ended with the wait: eager again
    assert _unsent(eager) == 0
    channel.wait_for_confirms()


def test_held_writes_leave_at_the_io_loops_next_turn(
    eager: Connection, broker: TestBroker, queue: str
) -> None:
    """A worker's `job.started` when the job outlasts the I/O thread's short wait for it: it
    leaves as that thread goes back to its loop, not with the job's end."""
    channel = eager.channel(confirm=True)
    channel.hold_output()
    _send(channel, queue, 1)
    time.sleep(QUIET_S)
    assert broker.depth(queue) == 0

    eager.pump(0.01)

    broker.wait_until(lambda: broker.depth(queue) == 1, 5, "the held message in its queue")
    channel.wait_for_confirms()


def test_a_connection_without_eager_send_is_left_to_pika(
    settings: Settings, broker: TestBroker, queue: str
) -> None:
    connection = connect_once(settings, "batching-test")
    try:
        channel = connection.channel(confirm=True)
        channel.hold_output()  # nothing to hold on such a connection: no effect
        _send(channel, queue, 1)
        _send(channel, queue, 2)
        assert _unsent(connection) > 0  # buffered, to go out together at the loop's turn
        channel.wait_for_confirms()
        assert broker.depth(queue) == 2
    finally:
        connection.close()
