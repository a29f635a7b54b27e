"""The gateway's link on the event loop, against pika's own frames: each message's Future
ends with the broker's answer for that message (a `multiple` ack settles every one it
covers, a nack or a return fails its own), and a connection or channel that fails first
leaves what was sent in doubt; a clear no from the broker is believed only when it can be
about one message alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pika
import pika.exceptions as pe
import pytest
from pika.frame import Method, decode_frame

from shared.amqp.loop_link import LoopLink
from shared.errors import AccessRefused, BrokerUnavailable, PublishInDoubt, PublishNacked


class PikaChannel:
    """pika's channel as the link publishes on it: the frames handed to its connection are
    read back with pika's own decoder into (exchange, routing key, properties)."""

    channel_number = 1

    def __init__(self) -> None:
        self.is_open = True
        self.sent: list[tuple[str, str, Any]] = []
        self.connection = self
        self._body_max_length = 131072 - 8

    def _raise_if_not_open(self) -> None:
        if not self.is_open:
            raise pe.ChannelWrongStateError("Channel is closed.")

    def _output_marshaled_frames(self, frames: list[bytes]) -> None:
        method, header = (decode_frame(f)[1] for f in frames[:2])
        assert method.method.mandatory
        self.sent.append((method.method.exchange, method.method.routing_key, header.properties))


class PikaConnection:
    is_closing = False
    is_closed = False

    def __init__(self) -> None:
        self.terminated: list[Exception] = []
        self.closed = 0

    def _terminate_stream(self, error: Exception) -> None:
        self.terminated.append(error)
        self.is_closed = True

    def close(self) -> None:
        self.closed += 1
        self.is_closing = True


Scenario = Callable[[LoopLink, PikaChannel, PikaConnection], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def go() -> None:
        link = LoopLink(asyncio.get_running_loop(), app_id="t", user="gateway", node="n:5672")
        channel, connection = PikaChannel(), PikaConnection()
        link._channel, link._connection = channel, connection
        await scenario(link, channel, connection)

    asyncio.run(go())


def send(link: LoopLink, name: str) -> asyncio.Future[None]:
    return link.publish("jobs", "render", b"{}", message_id=name, message_type="render")


def ack(tag: int, *, multiple: bool = False) -> Method:
    return Method(1, pika.spec.Basic.Ack(delivery_tag=tag, multiple=multiple))


def outcome(future: asyncio.Future[None]) -> BaseException | str | None:
    return "pending" if not future.done() else future.exception()


def test_a_multiple_ack_settles_every_message_up_to_its_tag_and_no_further() -> None:
    async def scenario(link: LoopLink, channel: PikaChannel, _c: PikaConnection) -> None:
        first, second, third = send(link, "a"), send(link, "b"), send(link, "c")
        props = channel.sent[0][2]
        assert (props.delivery_mode, props.user_id, props.message_id) == (2, "gateway", "a")
        link._on_confirm(ack(2, multiple=True))
        assert [outcome(f) for f in (first, second, third)] == [None, None, "pending"]
        link._on_confirm(ack(3))
        assert outcome(third) is None

    run(scenario)


def test_a_nack_and_a_return_fail_their_own_message_alone() -> None:
    async def scenario(link: LoopLink, _ch: PikaChannel, _c: PikaConnection) -> None:
        nacked, returned, fine = send(link, "full"), send(link, "nowhere"), send(link, "fine")
        link._on_confirm(Method(1, pika.spec.Basic.Nack(delivery_tag=1)))
        # A mandatory message no queue takes comes back before its ack.
        back = pika.spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE")
        props = pika.BasicProperties(type="render", message_id="nowhere")
        link._on_return(None, back, props, b"{}")
        link._on_confirm(ack(3, multiple=True))
        assert isinstance(outcome(nacked), PublishNacked) and "full" in str(outcome(nacked))
        refused = outcome(returned)
        assert isinstance(refused, PublishNacked) and "unroutable" in str(refused)
        assert outcome(fine) is None

    run(scenario)


def test_a_lost_connection_leaves_what_was_sent_in_doubt_and_sends_nothing_after() -> None:
    async def scenario(link: LoopLink, _ch: PikaChannel, _c: PikaConnection) -> None:
        first, second = send(link, "a"), send(link, "b")
        link._on_connection_closed(None, pe.StreamLostError("connection reset"))
        assert all(isinstance(outcome(f), PublishInDoubt) for f in (first, second))
        assert not link.is_open
        with pytest.raises(BrokerUnavailable, match="nothing was sent") as refused:
            send(link, "c")
        assert not isinstance(refused.value, PublishInDoubt)  # a clean no: never sent
        await link.wait_closed(1)  # the connection has ended: no wait

    run(scenario)


def test_a_blocked_connection_is_cut_at_once_and_its_messages_are_in_doubt() -> None:
    async def scenario(link: LoopLink, _ch: PikaChannel, connection: PikaConnection) -> None:
        sent = send(link, "a")
        link._on_blocked(connection, Method(0, pika.spec.Connection.Blocked("low on memory")))
        assert link.blocked_reason == "low on memory"
        error = outcome(sent)
        assert isinstance(error, PublishInDoubt) and "low on memory" in str(error)
        # Cut, not closed: a blocked broker would never answer a close.
        assert len(connection.terminated) == 1 and connection.closed == 0

    run(scenario)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_a_channel_closed_for_a_clear_no_is_believed_only_about_one_message(
    in_flight: int,
) -> None:
    async def scenario(link: LoopLink, _ch: PikaChannel, connection: PikaConnection) -> None:
        sent = [send(link, f"m{i}") for i in range(in_flight)]
        refusal = pe.ChannelClosedByBroker(403, "ACCESS_REFUSED - write access to exchange")
        link._on_channel_closed(None, refusal)
        errors = [outcome(f) for f in sent]
        if in_flight == 1:
            assert isinstance(errors[0], AccessRefused)
            assert not isinstance(errors[0], PublishInDoubt)
        else:  # which message it was about the broker does not say: each may be in
            assert all(isinstance(e, PublishInDoubt) for e in errors), errors
        assert connection.closed == 1  # the connection goes too, to be opened afresh

    run(scenario)


def test_closing_the_link_leaves_what_was_sent_in_doubt() -> None:
    """The publisher closes a link (its shutdown, or a confirm that never came): messages sent
    on it and not confirmed may be queued, so never a clean no (which would have the gateway
    delete the job's inputs and free its Idempotency-Key while the job runs)."""

    async def scenario(link: LoopLink, _ch: PikaChannel, connection: PikaConnection) -> None:
        sent = send(link, "a")
        link.close()
        assert isinstance(outcome(sent), PublishInDoubt)
        assert connection.closed == 1

    run(scenario)
