"""Every connection the suite opens sends a message's frames in one write: `connect_once`
and `open_loop_link` switch it on, so no client (worker, gateway, audit, a tool) is left
sending a frame per `send`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pika.adapters.utils.io_services_utils import _AsyncTransportBase
from pika.connection import Connection as PikaConnection

from shared.amqp import connect_once
from shared.amqp.loop_link import open_loop_link
from shared.config import Settings
from tests.support.broker import TestBroker


def _joined() -> bool:
    return all(
        getattr(f, "_jobsuite_joined", False)
        for f in (_AsyncTransportBase._produce, PikaConnection._output_marshaled_frames)
    )


@pytest.fixture
def pika_as_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """pika's two methods as they are before anything joins frames (wrappers without the
    mark, calling whatever is there now, so other tests are untouched)."""

    def unmarked(method: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args: method(*args)

    monkeypatch.setattr(_AsyncTransportBase, "_produce", unmarked(_AsyncTransportBase._produce))
    output = PikaConnection._output_marshaled_frames
    monkeypatch.setattr(PikaConnection, "_output_marshaled_frames", unmarked(output))
    assert not _joined()


@pytest.mark.usefixtures("pika_as_shipped")
def test_a_blocking_connection_joins_frames(settings: Settings, broker: TestBroker) -> None:
    connection = connect_once(settings, "frames-test")
    try:
        assert _joined()
    finally:
        connection.close()


@pytest.mark.usefixtures("pika_as_shipped")
def test_a_loop_link_joins_frames(settings: Settings, broker: TestBroker) -> None:
    async def open_and_close() -> None:
        link = await open_loop_link(settings, "frames-test")
        link.close()

    asyncio.run(open_and_close())
    assert _joined()
