"""Calling into a connection's I/O thread from a job thread, and waiting for the answer.

pika's BlockingConnection must only be used by the thread that owns it. A job thread hands
it work with `add_callback_threadsafe` and blocks on a Future; meanwhile the I/O thread keeps
pumping, so heartbeats flow however long the job runs. The call runs in a copy of the
caller's context, so what it logs carries the job's fields (job_id, type, attempt).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol, TypeVar

from shared.errors import BrokerUnavailable

T = TypeVar("T")
_POLL_S = 0.25


class ThreadsafeDoor(Protocol):
    """The one thread-safe way into a connection (shared.amqp.Connection is one)."""

    def call_threadsafe(self, fn: Callable[[], None]) -> None: ...


class Bridge(Protocol):
    """What a job thread needs of its connection's I/O thread (IoBridge is one)."""

    def call(self, fn: Callable[[], T]) -> T: ...


class IoBridge:
    def __init__(self, connection: ThreadsafeDoor) -> None:
        self._connection = connection
        self._closed = False
        # The first broker error a call met on the I/O thread: pika raises a dead connection's
        # error once, maybe inside a call, so the I/O loop reads the cause from here.
        self.failure: BrokerUnavailable | None = None

    def close(self) -> None:
        """The connection is gone: every waiting and future call fails fast."""
        self._closed = True

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the I/O thread and return its result (or raise its exception)."""
        if self._closed:
            raise BrokerUnavailable("connection lost")
        future: Future[T] = Future()
        context = contextvars.copy_context()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(context.run(fn))
            except BrokerUnavailable as e:
                self.failure = self.failure or e
                future.set_exception(e)
            except BaseException as e:
                future.set_exception(e)

        self._connection.call_threadsafe(run)
        while True:
            try:
                return future.result(timeout=_POLL_S)
            except TimeoutError:
                if self._closed and future.cancel():
                    raise BrokerUnavailable("connection lost before the call ran") from None
                # Still running on the I/O thread (or not yet picked up): keep waiting.
