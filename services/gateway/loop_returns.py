"""Outcomes that publisher threads settle, carried back to the event loop a burst at a time.

`asyncio.wrap_future` wakes the loop once per future (a `call_soon_threadsafe`: a write to
its wake-up pipe, a turn of the loop). A publisher thread settles a whole batch of requests
at once, so here the first outcome of a burst schedules one wake-up and the others only
join the list it drains: under load, one wake-up for many requests.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError, Future
from contextlib import suppress


class LoopReturns:
    """One event loop's side: `watch` a thread's Future, await what it gives back."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._settled: list[tuple[asyncio.Future[None], Future[None]]] = []
        self._wake_due = False

    def watch(self, future: Future[None]) -> asyncio.Future[None]:
        """On the loop: a loop future that ends as `future` does. Cancelling it leaves
        `future` alone (a job being published goes on whatever its request does)."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        future.add_done_callback(lambda done: self._settle(waiter, done))
        return waiter

    def _settle(self, waiter: asyncio.Future[None], done: Future[None]) -> None:
        """On whichever thread settled `done`: queue it; wake the loop if none is due."""
        with self._lock:
            self._settled.append((waiter, done))
            if self._wake_due:
                return
            self._wake_due = True
        with suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            settled, self._settled = self._settled, []
            self._wake_due = False
        for waiter, done in settled:
            if waiter.done():  # its request gave up (timed out, or the client went away)
                continue
            try:
                error = done.exception()
            except CancelledError:
                waiter.cancel()
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
