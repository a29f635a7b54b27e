"""The module that talks to pika (with `amqp_silence` and `amqp_confirms`): connections,
confirmed publishing, consuming.

Every pika error is turned into a `BrokerError` here (`raise BrokerUnavailable(...) from e`),
so the worker runner and the services never handle pika's exception zoo.

pika's BlockingConnection is not thread-safe: a connection belongs to the thread that made it.
Other threads reach it only through `Connection.call_threadsafe`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from shared.amqp_blocked import BlockedWatch
from shared.amqp_silence import SilenceWatch
from shared.config import Settings
from shared.errors import BrokerError, BrokerUnavailable, PublishInDoubt, PublishNacked
from shared.log import get_logger

if TYPE_CHECKING:
    from shared.amqp_confirms import PipelinedChannel

log = get_logger(__name__)

PERSISTENT = pika.DeliveryMode.Persistent
# How long a publish may wait while the broker blocks publishers (memory/disk alarm), for
# connections that neither wait the alarm out nor drop at once (see WhenBlocked).
BLOCKED_CONNECTION_TIMEOUT_S = 10.0
WhenBlocked = Literal["time out", "wait", "drop"]
"""What a connection does when the broker blocks its publishes during an alarm: give up
after BLOCKED_CONNECTION_TIMEOUT_S (tools); wait as long as the alarm lasts (workers: a job
in hand must not lose a delivery attempt to an alarm); end at once (the gateway, which
answers people)."""


def compute_backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off with full jitter: a random wait in [0, min(cap, base*2**attempt)]."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt)))


@contextmanager
def broker_errors(what: str) -> Iterator[None]:
    """Turn pika's exceptions into ours."""
    try:
        yield
    except pe.UnroutableError as e:
        raise PublishNacked(f"{what}: message returned as unroutable") from e
    except pe.NackError as e:
        raise PublishNacked(f"{what}: broker nacked the message") from e
    except (pe.AMQPError, AMQPConnectorException, OSError, AssertionError) as e:
        # AssertionError: pika asserts on some wrong-state calls after a connection died;
        # AMQPConnectorException: a handshake that timed out (not an AMQPError in pika).
        raise BrokerUnavailable(f"{what}: {type(e).__name__}: {e}") from e


@contextmanager
def _in_doubt_once_sent(what: str) -> Iterator[None]:
    """Inside `broker_errors`, around one publish: a failure after the message may have left
    (connection lost or blocked before its confirm) is in doubt; a channel already closed
    refused it before sending; a nack or return is a clear no (left to `broker_errors`)."""
    try:
        yield
    except (
        pe.ChannelWrongStateError,
        pe.ConnectionWrongStateError,
        pe.UnroutableError,
        pe.NackError,
    ):
        raise
    except (pe.AMQPError, OSError) as e:
        raise PublishInDoubt(f"{what}: sent, but not confirmed: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class Delivery:
    """A received message and what is needed to settle it on the channel it came from."""

    channel: Channel
    tag: int
    body: bytes
    message_id: str | None
    headers: dict[str, Any]
    redelivered: bool

    @property
    def delivery_count(self) -> int:
        """How often the broker delivered this message before (quorum queues count it)."""
        count = self.headers.get("x-delivery-count", 0)
        return int(count) if isinstance(count, int) else 0


class Channel:
    """A pika channel with our error handling; publishing is confirmed when opened so."""

    def __init__(self, raw: BlockingChannel, *, app_id: str) -> None:
        self._raw = raw
        self._app_id = app_id

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open)

    def declare_exchange(self, name: str, kind: str) -> None:
        with broker_errors(f"declare exchange {name}"):
            self._raw.exchange_declare(name, exchange_type=kind, durable=True)

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        with broker_errors(f"declare queue {name}"):
            self._raw.queue_declare(name, durable=True, arguments=arguments)

    def declare_private_queue(self) -> str:
        """A server-named, exclusive, auto-deleted queue (the tutorial's receive_logs)."""
        with broker_errors("declare private queue"):
            result = self._raw.queue_declare("", exclusive=True, auto_delete=True)
        return str(result.method.queue)

    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None:
        with broker_errors(f"bind {queue} to {exchange}"):
            self._raw.queue_bind(queue, exchange, routing_key=routing_key or None, **kw)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish a persistent JSON message with `mandatory`; on a confirm channel this
        returns only once the broker confirmed it, and raises PublishNacked otherwise
        (PublishInDoubt when the connection failed between sending and the confirm)."""
        props = self._properties(message_id, message_type, headers)
        what = f"publish to {exchange or 'default'}/{routing_key}"
        with broker_errors(what), _in_doubt_once_sent(what):
            self._send(exchange, routing_key, body, props)

    def _send(
        self, exchange: str, routing_key: str, body: bytes, props: pika.BasicProperties
    ) -> None:
        self._raw.basic_publish(exchange, routing_key, body, props, mandatory=True)

    def _properties(
        self, message_id: str, message_type: str, headers: dict[str, Any] | None
    ) -> pika.BasicProperties:
        return pika.BasicProperties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=message_id,
            type=message_type,
            app_id=self._app_id,
            timestamp=int(time.time()),
            headers=headers,
        )

    def set_prefetch(self, count: int) -> None:
        with broker_errors("basic.qos"):
            self._raw.basic_qos(prefetch_count=count)

    def consume(
        self,
        queue: str,
        on_delivery: Callable[[Delivery], None],
        *,
        on_cancel: Callable[[], None] | None = None,
        auto_ack: bool = False,
    ) -> str:
        def callback(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            on_delivery(self._delivery(method, props, body))

        with broker_errors(f"consume {queue}"):
            if on_cancel is not None:
                self._raw.add_on_cancel_callback(lambda _frame: on_cancel())
            return str(self._raw.basic_consume(queue, callback, auto_ack=auto_ack))

    def cancel(self, consumer_tag: str) -> None:
        with broker_errors("basic.cancel"):
            self._raw.basic_cancel(consumer_tag)

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        """Ack one delivery, or with `multiple` it and every earlier one on this channel."""
        self._settle(delivery, "ack", lambda: self._raw.basic_ack(delivery.tag, multiple))

    def reject(self, delivery: Delivery) -> None:
        """Reject without requeue: the queue dead-letters it."""
        self._settle(delivery, "reject", lambda: self._raw.basic_reject(delivery.tag, False))

    def _settle(self, delivery: Delivery, what: str, settle: Callable[[], None]) -> None:
        # A delivery tag is only meaningful on the channel it came from: never settle a
        # message from a dead channel on a new one.
        if delivery.channel is not self or not self.is_open:
            raise BrokerUnavailable(f"cannot {what}: the delivery's channel is closed")
        with broker_errors(what):
            settle()

    def queue_depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of an existing queue."""
        with broker_errors(f"inspect {queue}"):
            result = self._raw.queue_declare(queue, passive=True)
        return int(result.method.message_count), int(result.method.consumer_count)

    def get(self, queue: str) -> Delivery | None:
        """Take one message (basic.get) or None; settle it with ack/reject."""
        with broker_errors(f"basic.get {queue}"):
            method, props, body = self._raw.basic_get(queue, auto_ack=False)
        if method is None:
            return None
        return self._delivery(method, props, body)

    def _delivery(self, method: Any, props: Any, body: bytes) -> Delivery:
        return Delivery(
            channel=self,
            tag=method.delivery_tag,
            body=body,
            message_id=props.message_id,
            headers=dict(props.headers or {}),
            redelivered=bool(method.redelivered),
        )


class Connection:
    """One blocking connection, owned by the thread that opened it."""

    def __init__(
        self, raw: pika.BlockingConnection, *, app_id: str, blocked: BlockedWatch | None = None
    ) -> None:
        self._raw = raw
        self._app_id = app_id
        self._blocked = blocked

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open)

    @property
    def blocked_reason(self) -> str | None:
        """Why the broker blocks this connection's publishes (e.g. "low on memory"), or None;
        it stays set on a connection dropped for it (`when_blocked="drop"`)."""
        return self._blocked.reason if self._blocked is not None else None

    def channel(self, *, confirm: bool = False) -> Channel:
        with broker_errors("open channel"):
            raw = self._raw.channel()
            if confirm:
                raw.confirm_delivery()
        return Channel(raw, app_id=self._app_id)

    def pipelined_channel(self) -> PipelinedChannel:
        from shared.amqp_confirms import PipelinedChannel  # it builds on Channel, above

        with broker_errors("open channel"):
            raw = self._raw.channel()
        return PipelinedChannel(raw, app_id=self._app_id)

    def pump(self, seconds: float) -> None:
        """Run the I/O loop for a while: deliveries, heartbeats, thread-safe callbacks."""
        with broker_errors("I/O"):
            self._raw.process_data_events(time_limit=seconds)

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Schedule `fn` on the connection's own thread (the only safe way in)."""
        with broker_errors("schedule callback"):
            self._raw.add_callback_threadsafe(fn)

    def close(self) -> None:
        try:
            if self._raw.is_open:
                self._raw.close()
        except (pe.AMQPError, OSError, AssertionError) as e:
            log.debug("close_failed", error=str(e))


def connection_parameters(
    settings: Settings, name: str, when_blocked: WhenBlocked = "time out"
) -> pika.URLParameters:
    params = pika.URLParameters(settings.amqp_url)
    params.heartbeat = settings.amqp_heartbeat
    if when_blocked == "time out":
        params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_S
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name, "product": "jobsuite"}
    return params


def connect_once(
    settings: Settings, name: str, *, when_blocked: WhenBlocked = "time out"
) -> Connection:
    """One connection attempt; `when_blocked` says what a broker alarm does to it."""
    with broker_errors(f"connect to {_safe_url(settings.amqp_url)}"):
        raw = pika.BlockingConnection(connection_parameters(settings, name, when_blocked))
    # While blocked the broker still sends heartbeats, so a connection waiting out an alarm
    # is not mistaken for a dead one.
    SilenceWatch.start(raw)
    blocked = BlockedWatch.start(raw, drop=when_blocked == "drop")
    return Connection(raw, app_id=name, blocked=blocked)


def connect(
    settings: Settings,
    name: str,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    when_blocked: WhenBlocked = "time out",
) -> Connection | None:
    """Connect, retrying with back-off and jitter until it works or `should_stop()`;
    returns None only when asked to stop."""
    attempt = 0
    while not should_stop():
        try:
            return connect_once(settings, name, when_blocked=when_blocked)
        except BrokerError as e:
            delay = compute_backoff(attempt)
            log.warning("broker_unreachable", error=str(e), retry_in_s=round(delay, 2))
            attempt += 1
            _sleep_unless(should_stop, delay, sleep)
    return None


def _sleep_unless(
    should_stop: Callable[[], bool], seconds: float, sleep: Callable[[float], None]
) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        sleep(min(left, 0.2))


def _safe_url(url: str) -> str:
    """The AMQP URL without its password, for messages."""
    params = pika.URLParameters(url)
    return f"amqp://{params.host}:{params.port}{params.virtual_host and '/' + params.virtual_host}"
