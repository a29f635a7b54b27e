"""The one package that talks to pika: connections, channels, confirmed publishing, consuming.

Every pika error becomes a `BrokerError` here (`errors.py`), so the worker runner and the
services never handle pika's exceptions; every use of pika's private members is in
`pika_private.py`. Modules: `connection` (connect with retry, the connection and its
thread-safe door), `channel` (declare, consume, settle, publish with confirms),
`loop_link` (a confirm channel on an asyncio event loop: the gateway's publishing),
`silence` and `blocked` (watches on the I/O loop: a silent broker, a broker alarm),
`backoff` (how long to wait before trying again), `connect_errors` (a failed connect as one
line naming its cause) and `pika_logs` (pika's own lines dropped while a thread connects).
"""

from __future__ import annotations

from shared.amqp.backoff import compute_backoff
from shared.amqp.channel import Channel, ConfirmObserver, Delivery, Settles
from shared.amqp.connection import (
    BLOCKED_CONNECTION_TIMEOUT_S,
    Connection,
    WhenBlocked,
    broker_user,
    connect,
    connect_once,
    sleep_unless,
)
from shared.amqp.pika_private import send_frames_together

__all__ = [
    "BLOCKED_CONNECTION_TIMEOUT_S",
    "Channel",
    "ConfirmObserver",
    "Connection",
    "Delivery",
    "Settles",
    "WhenBlocked",
    "broker_user",
    "compute_backoff",
    "connect",
    "connect_once",
    "send_frames_together",
    "sleep_unless",
]
