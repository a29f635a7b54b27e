"""Calling into a connection's I/O thread from a job thread, and waiting for the answer.

pika's BlockingConnection must only be used by the thread that owns it. A job thread hands
it work with `add_callback_threadsafe` and blocks on a Future; meanwhile the I/O thread keeps
pumping, so heartbeats flow however long the job runs. The call runs in a copy of the
caller's context, so what it logs carries the job's fields (job_id, type, attempt).

A short job need not wake the I/O loop at all: the I/O thread that handed a job over waits a
moment for it (`HandOver`), and a job done by then hands its settling straight to it. That
saves the loop's wake-up pipe, a turn of pika's loop and the timer it sets, about a fifth of
a no-op job's CPU; `job.started`, still in the connection's output buffer, then goes out in
one write with the job's other events. Such a settling is given (`IoBridge.hand`), not
called: the job thread does not wait for it, and the I/O thread ends the job itself, which
saves waking the job thread again for the answer (a tenth of a no-op job's CPU).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol, TypeVar

from shared.errors import BrokerUnavailable

T = TypeVar("T")
_POLL_S = 0.25


class ThreadsafeDoor(Protocol):
    """The one thread-safe way into a connection (shared.amqp.Connection is one)."""

    def call_threadsafe(self, fn: Callable[[], None]) -> None: ...


class HandOver:
    """One job's settling handed from its job thread straight to the I/O thread, if that
    thread is still waiting for it; once it has stopped waiting, never (the settling then goes
    through the I/O loop). Exactly one of the two happens: both sides decide under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = True
        self._inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.handed = False  # set once something was handed over (the I/O thread runs it)

    def offer(self, run: Callable[[], None]) -> bool:
        """From the job thread: hand `run` over; False when the I/O thread no longer waits."""
        with self._lock:
            if not self._waiting:
                return False
            self._waiting = False
            self.handed = True
            self._inbox.put(run)
            return True

    def take(self, seconds: float) -> bool:
        """On the I/O thread: run what the job thread hands over within `seconds`; whether
        something was."""
        try:
            run = self._inbox.get(timeout=seconds)
        except queue.Empty:
            with self._lock:
                if self._waiting:
                    self._waiting = False
                    return False
            run = self._inbox.get()  # offered as the wait ended: it is there now
        run()
        return True


class Bridge(Protocol):
    """What a job thread needs of its connection's I/O thread (IoBridge is one)."""

    def call(self, fn: Callable[[], T]) -> T: ...

    def hand(self, fn: Callable[[], None], hand_over: HandOver) -> bool: ...

    def give_up(self, why: str) -> None: ...


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

    def give_up(self, why: str) -> None:
        """From any thread: the I/O loop drops the connection at its next look around (and
        reconnects), so the broker takes back every delivery still unsettled on it."""
        self.failure = self.failure or BrokerUnavailable(why)

    def hand(self, fn: Callable[[], None], hand_over: HandOver) -> bool:
        """Give `fn` to the I/O thread still waiting on `hand_over`, and return at once: it
        runs there, in a copy of the caller's context, before that thread does anything else.
        False, and nothing runs, when that thread no longer waits (or the connection is gone):
        `call` it instead. `fn` must handle its own errors; a BrokerUnavailable it lets
        through is kept as the connection's failure."""
        if self._closed:
            return False
        context = contextvars.copy_context()

        def run() -> None:
            try:
                context.run(fn)
            except BrokerUnavailable as e:
                self.failure = self.failure or e

        return hand_over.offer(run)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the I/O thread, through its loop, and return its result (or raise
        its exception)."""
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
