"""Live updates (shared/live.py): a change told from any thread reaches every open stream at
once, as a server-sent event; closing ends every stream."""

from __future__ import annotations

import asyncio
import threading

from shared.live import Changes


async def _next(stream: object) -> str:
    return await asyncio.wait_for(stream.__anext__(), 2)  # type: ignore[attr-defined]


def test_changes_from_other_threads_reach_every_stream_as_events() -> None:
    async def scenario() -> None:
        changes = Changes()
        one, two = changes.stream(), changes.stream()
        assert await _next(one) == "retry: 2000\n\n"
        assert await _next(two) == "retry: 2000\n\n"
        told = threading.Thread(target=changes.tell, args=("stored", "k1"))
        told.start()
        told.join()
        assert await _next(one) == 'event: stored\ndata: {"id": "k1"}\n\n'
        assert await _next(two) == 'event: stored\ndata: {"id": "k1"}\n\n'
        changes.tell("cleared", None)
        assert await _next(one) == 'event: cleared\ndata: {"id": null}\n\n'
        assert await _next(two) == 'event: cleared\ndata: {"id": null}\n\n'
        await one.aclose()  # a client gone: the others go on
        changes.tell("deleted", "k2")
        assert await _next(two) == 'event: deleted\ndata: {"id": "k2"}\n\n'
        await two.aclose()

    asyncio.run(scenario())


def test_an_idle_stream_sends_a_heartbeat() -> None:
    async def scenario() -> None:
        stream = Changes(heartbeat_s=0.05).stream()
        await _next(stream)
        assert await _next(stream) == ": still here\n\n"
        await stream.aclose()

    asyncio.run(scenario())


def test_close_ends_every_stream_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        changes = Changes()
        stream = changes.stream()
        await _next(stream)
        changes.close()
        assert [chunk async for chunk in stream] == []
        assert [chunk async for chunk in changes.stream()] == []

    asyncio.run(scenario())
