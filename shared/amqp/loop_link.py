"""A confirm channel on an asyncio event loop, for a publisher that serves requests there.

pika's AsyncioConnection runs on the loop itself: a request publishes and awaits its own
message's confirm with no thread hand-over either way, and the broker's confirms (often one
`multiple` ack for many messages) settle each message's Future as they arrive.

Every message is persistent, `mandatory` and carries the connection's user as `user_id`,
as on `Channel`. A message's Future ends with None once confirmed; PublishNacked when the
broker nacks it or returns it as unroutable; PublishInDoubt when the connection or the
channel fails first (the broker may hold it); AccessRefused or PublisherMismatch when the
broker closes the channel for a clear no. When the broker blocks the connection (a memory
or disk alarm) the link drops it at once, like `connect_once(when_blocked="drop")`.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from shared.amqp import pika_private
from shared.amqp.channel import ConfirmObserver, message_of, nacked, returned
from shared.amqp.connect_errors import all_nodes_failed, connect_failure, host_port
from shared.amqp.connection import connection_parameters, user_of
from shared.amqp.errors import broker_errors, sent_but_unconfirmed
from shared.amqp.pika_logs import quiet_while_connecting
from shared.amqp.silence import SilenceWatch
from shared.config import Settings
from shared.errors import (
    BrokerConnectFailed,
    BrokerError,
    BrokerUnavailable,
    PublishInDoubt,
    PublishNacked,
)
from shared.log import get_logger

log = get_logger("shared.amqp")
_WHAT = "wait for publisher confirms"


@dataclass
class _InFlight:
    future: asyncio.Future[None]
    message_id: str
    what: str  # "type id", as a refusal names it
    sent_at: float


class LoopLink:
    """One connection and its confirm channel on the running loop (`open_loop_link`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        app_id: str,
        user: str | None,
        node: str,
        confirms: ConfirmObserver | None = None,
    ) -> None:
        self.loop = loop
        self.node = node  # host:port of the broker node it reached
        self.blocked_reason: str | None = None  # kept after the link dropped itself for it
        self._app_id = app_id
        self._user = user
        self._confirms = confirms
        self._connection: Any = None
        self._channel: Any = None
        self._tag = 0
        self._in_flight: dict[int, _InFlight] = {}
        self._returned: dict[str, str] = {}  # message_id -> why, until its confirm comes
        self._failure: BrokerError | None = None  # why the link is down, once it is
        self._closed: asyncio.Future[None] = loop.create_future()  # the connection has ended

    @property
    def is_open(self) -> bool:
        return self._failure is None and self._channel is not None and self._channel.is_open

    @property
    def failure(self) -> BrokerError | None:
        """Why the link is down (None while it is up)."""
        return self._failure

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: dict[str, Any] | None = None,
    ) -> asyncio.Future[None]:
        """Send now; the Future ends with the broker's answer. BrokerUnavailable at once when
        nothing could be sent (the link is down)."""
        if not self.is_open:
            why = self._failure or "closed"
            raise BrokerUnavailable(f"publish: the connection is down ({why}); nothing was sent")
        message = message_of(
            app_id=self._app_id,
            user_id=self._user,
            message_id=message_id,
            message_type=message_type,
            headers=headers,
        )
        with broker_errors(f"publish to {exchange or 'default'}/{routing_key}"):
            pika_private.publish_encoded(self._channel, exchange, routing_key, body, message)
        self._tag += 1
        future: asyncio.Future[None] = self.loop.create_future()
        what = f"{message_type} {message_id}"
        self._in_flight[self._tag] = _InFlight(future, message_id, what, time.monotonic())
        return future

    async def wait_closed(self, seconds: float) -> None:
        """Until the connection has ended, or `seconds` have passed."""
        if not self._closed.done():
            await asyncio.wait([self._closed], timeout=seconds)

    def close(self) -> None:
        """Close the connection; messages still in flight end in doubt."""
        # Sent and not confirmed: the broker may hold them (never a clean no).
        self._fail(PublishInDoubt("the publisher closed its connection before their confirms"))
        connection = self._connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            with suppress(pe.AMQPError, OSError, AssertionError):  # one still opening, say
                connection.close()

    # --- pika's callbacks, on the loop ----------------------------------------------------

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        was_nack = isinstance(method, pika.spec.Basic.Nack)
        now = time.monotonic()
        for tag in self._confirmed_tags(method.delivery_tag, method.multiple):
            sent = self._in_flight.pop(tag)
            if self._confirms is not None:
                self._confirms.observe(now - sent.sent_at)
            came_back = self._returned.pop(sent.message_id, None)
            if sent.future.done():  # its request gave up waiting
                continue
            if was_nack:
                sent.future.set_exception(PublishNacked(nacked(sent.what)))
            elif came_back is not None:
                sent.future.set_exception(PublishNacked(came_back))
            else:
                sent.future.set_result(None)

    def _confirmed_tags(self, delivery_tag: int, multiple: bool) -> list[int]:
        if not multiple:
            return [delivery_tag] if delivery_tag in self._in_flight else []
        # Tags go up in the order sent, and a dict keeps that order.
        tags = []
        for tag in self._in_flight:
            if tag > delivery_tag:
                break
            tags.append(tag)
        return tags

    def _on_return(self, _channel: Any, method: Any, props: Any, _body: bytes) -> None:
        # A mandatory message no queue took comes back before its confirm.
        self._returned[str(props.message_id)] = returned(method, props)

    def _on_blocked(self, connection: Any, frame: Any) -> None:
        self.blocked_reason = str(getattr(frame.method, "reason", "") or "a resource alarm")
        log.warning("broker_blocks_publishing", reason=self.blocked_reason, dropping=True)
        error = pe.ConnectionBlockedTimeout(f"the broker blocks publishing: {self.blocked_reason}")
        self._fail(sent_but_unconfirmed(_WHAT, error))
        # Cut, not closed: a blocked connection is not read, so a close would never be
        # answered and the socket would stay for the whole alarm.
        pika_private.terminate_stream(connection, error)

    def _on_channel_closed(self, _channel: Any, reason: Exception) -> None:
        # The broker's clear no (403, a refused user_id) names one message; with others in
        # flight on the channel, it cannot say which, so each of them is in doubt.
        self._fail(sent_but_unconfirmed(_WHAT, reason, clear_no=len(self._in_flight) == 1))
        self.close()  # a channel the broker closed takes the connection with it: reopened

    def _on_connection_closed(self, _connection: Any, reason: Exception) -> None:
        self._fail(sent_but_unconfirmed(_WHAT, reason))
        if not self._closed.done():
            self._closed.set_result(None)

    def _fail(self, error: BrokerError) -> None:
        """The link is down: every message in flight ends with `error` (the first cause)."""
        self._failure = self._failure or error
        in_flight, self._in_flight = self._in_flight, {}
        for sent in in_flight.values():
            if not sent.future.done():
                sent.future.set_exception(self._failure)


async def open_loop_link(
    settings: Settings, name: str, *, confirms: ConfirmObserver | None = None
) -> LoopLink:
    """A link on the running loop to the first node of AMQP_URL that answers; the broker's
    alarm drops it (see the module's docstring). BrokerConnectFailed names each node's
    failure, as `connect_once` does."""
    pika_private.patch_process()  # a burst of jobs, each in one send, as on every connection
    failures: list[tuple[str, BrokerConnectFailed]] = []
    for params in connection_parameters(settings, name, "drop"):
        link = LoopLink(
            asyncio.get_running_loop(),
            app_id=name,
            user=user_of(params),
            node=host_port(params),
            confirms=confirms,
        )
        try:
            # pika's lines from this thread are dropped meanwhile: on a loop, those of its
            # other connections too, for the few milliseconds connects take.
            with quiet_while_connecting():
                await _open(link, params)
        except (pe.AMQPError, AMQPConnectorException, OSError, AssertionError, BrokerError) as e:
            link.close()
            failures.append((host_port(params), connect_failure(e, params)))
            continue
        except BaseException:  # cancelled: nothing half-open stays behind
            link.close()
            raise
        return link
    raise all_nodes_failed(failures)


async def _open(link: LoopLink, params: pika.ConnectionParameters) -> None:
    """Connect, open a channel and put it in confirm mode; raises what stopped it."""
    opened: asyncio.Future[None] = link.loop.create_future()

    def failed(error: BaseException) -> None:
        if not opened.done():
            opened.set_exception(error)

    def confirming(_frame: Any) -> None:
        if not opened.done():
            opened.set_result(None)

    def on_channel(channel: Any) -> None:
        link._channel = channel
        channel.add_on_close_callback(link._on_channel_closed)
        channel.add_on_return_callback(link._on_return)
        channel.confirm_delivery(link._on_confirm, callback=confirming)

    def on_closed(connection: Any, reason: Exception) -> None:
        link._on_connection_closed(connection, reason)
        failed(reason)

    connection = AsyncioConnection(
        params,
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_open_error_callback=lambda _c, error: failed(error),
        on_close_callback=on_closed,
        custom_ioloop=link.loop,
    )
    link._connection = connection
    connection.add_on_connection_blocked_callback(link._on_blocked)
    await opened
    SilenceWatch.start_on(connection)  # a dead path noticed within a few heartbeats
