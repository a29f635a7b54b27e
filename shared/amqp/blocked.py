"""Noticing that the broker blocks a connection's publishes.

RabbitMQ blocks a connection when it publishes during a memory or disk alarm, and says so
with `connection.blocked` (a connection that has not published is never told). pika's own
answer is `blocked_connection_timeout`: the publish hangs until then. A publisher that
serves people (the gateway) wants to know at once instead, and to give up the connection:
nothing it sends is confirmed while the alarm lasts.
"""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions as pe

from shared.amqp import pika_private
from shared.log import get_logger

log = get_logger("shared.amqp")


class BlockedWatch:
    """Keeps `reason` while the broker blocks the connection; with `drop`, ends the
    connection the moment it is blocked, so a publish waiting for its confirm fails now."""

    def __init__(self, impl: Any, *, drop: bool) -> None:
        self._connection = impl
        self._drop = drop
        self.reason: str | None = None

    @classmethod
    def start(cls, raw: pika.BlockingConnection, *, drop: bool) -> BlockedWatch:
        # Registered on pika's SelectConnection, not the BlockingConnection: the blocking
        # adapter queues these callbacks until the next process_data_events, which a thread
        # waiting for a confirm never reaches.
        impl = pika_private.connection_impl(raw)
        watch = cls(impl, drop=drop)
        impl.add_on_connection_blocked_callback(watch._on_blocked)
        impl.add_on_connection_unblocked_callback(watch._on_unblocked)
        return watch

    def _on_blocked(self, _connection: Any, frame: Any) -> None:
        self.reason = str(getattr(frame.method, "reason", "") or "a resource alarm")
        log.warning("broker_blocks_publishing", reason=self.reason, dropping=self._drop)
        if self._drop and self._connection.is_open:
            why = f"the broker blocks publishing: {self.reason}"
            pika_private.terminate_stream(self._connection, pe.ConnectionBlockedTimeout(why))

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        log.info("broker_unblocks_publishing", reason=self.reason)
        self.reason = None
