"""The gateway's publishing connections: what the publisher needs of one (`Link`), and how
the real one is opened (`open_publishing_link`): the topology checked on a short blocking
connection in a thread, then a link on the running event loop (shared/amqp/loop_link.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared.amqp import ConfirmObserver, connect_once
from shared.amqp.loop_link import open_loop_link
from shared.config import Settings
from shared.errors import BrokerError
from shared.topology import ensure_topology


class Link(Protocol):
    """One publishing connection on the loop (shared.amqp.loop_link.LoopLink; tests script
    their own)."""

    node: str
    blocked_reason: str | None  # why the broker blocked it, kept once it dropped itself

    @property
    def is_open(self) -> bool: ...
    @property
    def failure(self) -> BrokerError | None: ...

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: dict[str, Any] | None = None,
    ) -> asyncio.Future[None]: ...

    async def wait_closed(self, seconds: float) -> None: ...
    def close(self) -> None: ...


Connector = Callable[[Settings, str], Awaitable[Link]]


async def open_publishing_link(
    settings: Settings, name: str, *, confirms: ConfirmObserver | None = None
) -> Link:
    """The topology checked (declared where this user may) on a short blocking connection in
    a thread, then a link on the running loop."""
    await asyncio.to_thread(_ensure_topology, settings, name)
    return await open_loop_link(settings, name, confirms=confirms)


def _ensure_topology(settings: Settings, name: str) -> None:
    connection = connect_once(settings, name, when_blocked="drop")
    try:
        ensure_topology(connection, settings)
    finally:
        connection.close()
