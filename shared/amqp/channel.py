"""A channel with our error handling: declaring, consuming, settling, confirmed publishing.

A channel opened with confirms tracks them itself, as pika's asynchronous adapter does,
instead of letting pika's BlockingChannel wait for each message in turn (a broker round trip,
and for a quorum queue a disk sync, per message): `publish_nowait` sends, and
`wait_for_confirms` waits once for everything sent so far. `publish` is the two together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pika
from pika.adapters.blocking_connection import BlockingChannel

from shared.amqp import pika_private
from shared.amqp.errors import broker_errors, in_doubt_once_sent
from shared.amqp.publish_frames import Message
from shared.errors import BrokerUnavailable, PublishNacked

PERSISTENT = pika.DeliveryMode.Persistent.value
CONTENT_TYPE = "application/json"


class ConfirmObserver(Protocol):
    """Told each message's confirm latency (shared.metrics.ConfirmLatency)."""

    def observe(self, seconds: float) -> None: ...


class Settles(Protocol):
    """What settles a delivery: the channel it came from."""

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None: ...
    def reject(self, delivery: Delivery) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """A received message and the channel that settles it (and only that one)."""

    channel: Settles
    tag: int
    body: bytes
    message_id: str | None
    headers: dict[str, Any]
    redelivered: bool
    user_id: str | None = None  # the publisher's broker user, checked by the broker when set

    @property
    def delivery_count(self) -> int:
        """How often the broker delivered this message before (quorum queues count it)."""
        count = self.headers.get("x-delivery-count", 0)
        return int(count) if isinstance(count, int) else 0


def message_of(
    *,
    app_id: str,
    user_id: str | None,
    message_id: str,
    message_type: str,
    headers: dict[str, Any] | None,
) -> Message:
    """What every message we publish carries (docs/design.md, Messages): JSON, persistent,
    its id and type, the publishing connection's name and broker user, a timestamp."""
    return Message(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        message_id=message_id,
        message_type=message_type,
        app_id=app_id,
        timestamp=int(time.time()),
        user_id=user_id,
        headers=headers,
    )


def nacked(what: str) -> str:
    """Why a message (`what`: "type id") was refused, when the broker nacked it."""
    return f"{what}: nacked by the broker (queue full?)"


def returned(method: Any, props: Any) -> str:
    """Why a mandatory message came back from the broker (basic.return): no queue took it."""
    return f"{props.type} {props.message_id}: returned as unroutable ({method.reply_text})"


class Channel:
    """One pika channel. Publishing needs confirms (`Connection.channel(confirm=True)`):
    every message is persistent, `mandatory`, and counts as sent only once confirmed.
    Every message carries `user_id`, the connection's broker user: RabbitMQ refuses a
    message whose user_id is not the authenticated user, so consumers (the audit) can
    trust it as the publisher's identity."""

    def __init__(
        self,
        raw: BlockingChannel,
        *,
        app_id: str,
        confirm: bool = False,
        user_id: str | None = None,
        confirms: ConfirmObserver | None = None,
    ) -> None:
        self._raw = raw
        self._app_id = app_id
        self._user_id = user_id
        self._confirm = confirm
        self._next_tag = 1
        self._unconfirmed: dict[int, str] = {}  # tag -> "type id"
        self._confirms = confirms
        self._sent_at: dict[int, float] = {}  # only with `confirms`: when each was sent
        self._refused: list[str] = []  # why each refused message was
        self._refused_ids: set[str] = set()
        if confirm:
            self._select_confirms()

    def _select_confirms(self) -> None:
        impl = pika_private.channel_impl(self._raw)
        selected: list[bool] = []
        with broker_errors("confirm.select"):
            impl.confirm_delivery(
                ack_nack_callback=self._on_confirm, callback=lambda _frame: selected.append(True)
            )
            impl.add_on_return_callback(self._on_return)
            pika_private.flush_until(self._raw, lambda: bool(selected))

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open)

    def close(self) -> None:
        """Close it if it is still open; a channel the broker closed is already gone."""
        if self._raw.is_open:
            with broker_errors("close channel"):
                self._raw.close()

    # --- topology -------------------------------------------------------------------------

    def declare_exchange(self, name: str, kind: str) -> None:
        with broker_errors(f"declare exchange {name}"):
            self._raw.exchange_declare(name, exchange_type=kind, durable=True)

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        with broker_errors(f"declare queue {name}"):
            self._raw.queue_declare(name, durable=True, arguments=arguments)

    def check_exchange(self, name: str) -> None:
        """That the exchange exists (a passive declare: needs no permission)."""
        with broker_errors(f"check exchange {name}"):
            self._raw.exchange_declare(name, passive=True)

    def declare_private_queue(self) -> str:
        """A server-named, exclusive, auto-deleted queue (the tutorial's receive_logs)."""
        with broker_errors("declare private queue"):
            result = self._raw.queue_declare("", exclusive=True, auto_delete=True)
        return str(result.method.queue)

    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None:
        with broker_errors(f"bind {queue} to {exchange}"):
            self._raw.queue_bind(queue, exchange, routing_key=routing_key or None, **kw)

    def queue_depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of an existing queue."""
        with broker_errors(f"inspect {queue}"):
            result = self._raw.queue_declare(queue, passive=True)
        return int(result.method.message_count), int(result.method.consumer_count)

    # --- publishing -----------------------------------------------------------------------

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
        """Publish and return once the broker confirmed this message (and every one sent
        before it). PublishNacked: refused (nacked, or returned as unroutable);
        PublishInDoubt: the connection failed between sending and the confirm;
        BrokerUnavailable: nothing was sent."""
        self.publish_nowait(
            exchange,
            routing_key,
            body,
            message_id=message_id,
            message_type=message_type,
            headers=headers,
        )
        self.wait_for_confirms()

    def publish_nowait(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Send a persistent, mandatory message; `wait_for_confirms` says how it went."""
        if not self._confirm:
            raise BrokerUnavailable("publishing needs a channel opened with confirms")
        message = message_of(
            app_id=self._app_id,
            user_id=self._user_id,
            message_id=message_id,
            message_type=message_type,
            headers=headers,
        )
        with broker_errors(f"publish to {exchange or 'default'}/{routing_key}"):
            impl = pika_private.channel_impl(self._raw)
            pika_private.publish_encoded(impl, exchange, routing_key, body, message)
        self._unconfirmed[self._next_tag] = f"{message_type} {message_id}"
        if self._confirms is not None:
            self._sent_at[self._next_tag] = time.monotonic()
        self._next_tag += 1

    def hold_output(self) -> None:
        """Keep what the connection writes next until it next waits on the broker, to send it
        with what follows in one write (a connection opened with `eager_send`; else nothing
        changes: pika sends it at its loop's next turn)."""
        pika_private.hold_writes(self._raw.connection)

    def wait_for_confirms(self) -> None:
        """Until every message sent so far is confirmed; PublishNacked names any refused,
        PublishInDoubt when the connection failed with messages still unconfirmed."""
        what = "wait for publisher confirms"
        with broker_errors(what), in_doubt_once_sent(what):
            pika_private.flush_until(self._raw, lambda: not self._unconfirmed)
        refused, self._refused = self._refused, []
        ids, self._refused_ids = frozenset(self._refused_ids), set()
        if refused:
            raise PublishNacked("; ".join(refused), ids)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [t for t in self._unconfirmed if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        now = time.monotonic()
        for tag in tags:
            sent = self._unconfirmed.pop(tag, "?")
            sent_at = self._sent_at.pop(tag, None)
            if sent_at is not None and self._confirms is not None:
                self._confirms.observe(now - sent_at)
            if isinstance(method, pika.spec.Basic.Nack):
                self._refused.append(nacked(sent))
                self._refused_ids.add(sent.partition(" ")[2])

    def _on_return(self, _channel: Any, method: Any, props: Any, _body: bytes) -> None:
        # A mandatory message no queue took comes back before its confirm.
        self._refused.append(returned(method, props))
        self._refused_ids.add(str(props.message_id))

    # --- consuming ------------------------------------------------------------------------

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

    def get(self, queue: str) -> Delivery | None:
        """Take one message (basic.get) or None; settle it with ack/reject."""
        with broker_errors(f"basic.get {queue}"):
            method, props, body = self._raw.basic_get(queue, auto_ack=False)
        if method is None:
            return None
        return self._delivery(method, props, body)

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

    def _delivery(self, method: Any, props: Any, body: bytes) -> Delivery:
        return Delivery(
            channel=self,
            tag=method.delivery_tag,
            body=body,
            message_id=props.message_id,
            headers=dict(props.headers or {}),
            redelivered=bool(method.redelivered),
            user_id=props.user_id,
        )
