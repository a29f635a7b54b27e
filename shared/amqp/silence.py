"""Noticing a dead path to the broker within a few heartbeat intervals."""

from __future__ import annotations

import time
from typing import Any

import pika
import pika.exceptions as pe

from shared.amqp import pika_private
from shared.log import get_logger

log = get_logger("shared.amqp")

# The broker sends something at least once per heartbeat interval; this many silent intervals
# mean the path is dead (RabbitMQ gives up on a silent client after two to three).
SILENT_HEARTBEATS_LIMIT = 3


class SilenceWatch:
    """Drops a connection on which the broker has gone quiet for `SILENT_HEARTBEATS_LIMIT`
    heartbeat intervals.

    pika checks once per (heartbeat + 5 s) window and wants a whole window silent, so a path
    that died without a FIN or RST (a blackhole) went unnoticed for 7-14 s at heartbeat 2.
    This runs on pika's I/O loop timer as pika's own check does, so it also fires while the
    I/O thread waits for a publisher confirm; it ends the stream the same way (no closing
    handshake: nothing would answer it).
    """

    def __init__(self, impl: Any, heartbeat_s: int) -> None:
        # pika's SelectConnection under the BlockingConnection: its byte count and I/O loop
        # are what pika's own HeartbeatChecker uses.
        self._connection = impl
        self._heartbeat_s = heartbeat_s
        self._tick_s = heartbeat_s / 4
        self._seen = impl.bytes_received
        self._heard_at = time.monotonic()

    @classmethod
    def start(cls, raw: pika.BlockingConnection) -> None:
        cls.start_on(pika_private.connection_impl(raw))

    @classmethod
    def start_on(cls, impl: Any) -> None:
        """On an open connection of pika's own adapters (SelectConnection, AsyncioConnection)."""
        heartbeat_s = impl.params.heartbeat  # as negotiated
        if heartbeat_s:
            watch = cls(impl, heartbeat_s)
            impl.ioloop.call_later(watch._tick_s, watch._check)

    def _check(self) -> None:
        if not self._connection.is_open:
            return
        now = time.monotonic()
        if self._connection.bytes_received != self._seen:
            self._seen, self._heard_at = self._connection.bytes_received, now
        elif (silent_s := now - self._heard_at) > SILENT_HEARTBEATS_LIMIT * self._heartbeat_s:
            log.warning("broker_silent", silent_s=round(silent_s, 1), heartbeat_s=self._heartbeat_s)
            why = f"nothing from the broker for {silent_s:.1f}s (heartbeat {self._heartbeat_s}s)"
            pika_private.terminate_stream(self._connection, pe.AMQPHeartbeatTimeout(why))
            return
        self._connection.ioloop.call_later(self._tick_s, self._check)
