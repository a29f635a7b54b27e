"""A channel without a broker: it records, in order, what the worker runner does on it.

It stands in for `shared.amqp.Channel` on both sides a consumer uses (taking deliveries,
publishing with confirms, settling), so settling, the time limit and the delivery checks run
as unit tests in milliseconds, beside the real-broker tests that prove the same on the wire.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.amqp import Delivery
from shared.errors import PublishNacked
from shared.messages import Job, decode_event, decode_job, encode


@dataclass(frozen=True)
class Published:
    exchange: str
    routing_key: str
    body: bytes
    message_type: str
    headers: dict[str, Any] | None

    @property
    def event(self) -> str:
        return decode_event(self.body).event

    @property
    def job(self) -> Job:
        return decode_job(self.body)


@dataclass
class StubChannel:
    is_open: bool = True
    # What happened, in order: ("publish", message type), ("confirm",), ("ack", tag), …
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    # Message types the broker refuses (nack) at the next wait for confirms.
    refuse: set[str] = field(default_factory=set)
    # The same, once each: the type leaves the set as its first message is refused.
    refuse_once: set[str] = field(default_factory=set)
    prefetch: int | None = None
    # While cleared, a wait for confirms blocks (a blocked connection: a broker alarm).
    confirms_flow: threading.Event = field(default_factory=lambda: _set(threading.Event()))
    _on_delivery: Callable[[Delivery], None] | None = None
    _next_tag: int = 1
    _refused: list[str] = field(default_factory=list)
    _refused_ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- publishing with confirms ---------------------------------------------------------

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
        with self._lock:
            self.calls.append(("publish", message_type))
            self.published.append(Published(exchange, routing_key, body, message_type, headers))
            if message_type in self.refuse or message_type in self.refuse_once:
                self.refuse_once.discard(message_type)
                self._refused.append(f"{message_type} {message_id}: nacked")
                self._refused_ids.add(message_id)

    def hold_output(self) -> None:
        """Nothing to hold: what is published here is recorded at once."""

    def wait_for_confirms(self) -> None:
        self.confirms_flow.wait()
        with self._lock:
            self.calls.append(("confirm",))
            refused, self._refused = self._refused, []
            ids, self._refused_ids = frozenset(self._refused_ids), set()
        if refused:
            raise PublishNacked("; ".join(refused), ids)

    # --- consuming and settling -----------------------------------------------------------

    def set_prefetch(self, count: int) -> None:
        self.prefetch = count

    def consume(
        self,
        queue: str,
        on_delivery: Callable[[Delivery], None],
        *,
        on_cancel: Callable[[], None] | None = None,
        auto_ack: bool = False,
    ) -> str:
        self.calls.append(("consume", queue))
        self._on_delivery = on_delivery
        return "ctag"

    def cancel(self, consumer_tag: str) -> None:
        self.calls.append(("cancel",))
        self._on_delivery = None

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        with self._lock:
            self.calls.append(("ack", delivery.tag))

    def reject(self, delivery: Delivery) -> None:
        with self._lock:
            self.calls.append(("reject", delivery.tag))

    @property
    def consuming(self) -> bool:
        return self._on_delivery is not None

    def deliver(
        self,
        body: bytes | Job,
        *,
        delivery_count: int = 0,
        headers: dict[str, Any] | None = None,
    ) -> Delivery:
        """Hand a message to the consumer, as the broker would (prefetch 1: one at a time)."""
        assert self._on_delivery is not None, "nobody consumes"
        raw = encode(body) if isinstance(body, Job) else body
        headers = dict(headers or {})
        if delivery_count:
            headers["x-delivery-count"] = delivery_count
        delivery = Delivery(self, self._next_tag, raw, None, headers, delivery_count > 0)
        self._next_tag += 1
        self._on_delivery(delivery)
        return delivery

    def settled(self) -> list[tuple[Any, ...]]:
        """The acks and rejects so far."""
        return [call for call in self.calls if call[0] in ("ack", "reject")]

    def events(self) -> list[str]:
        return [p.event for p in self.published if p.message_type.startswith("job.")]


class IoThread:
    """Stands in for a connection's I/O thread: runs what is handed to it, in order
    (`call_threadsafe`, as `shared.amqp.Connection` offers)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="stub-io", daemon=True)
        self._thread.start()

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        self._calls.put(fn)

    def _run(self) -> None:
        while (fn := self._calls.get()) is not None:
            fn()

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join(5)


def _set(event: threading.Event) -> threading.Event:
    event.set()
    return event
