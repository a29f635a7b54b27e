"""Confirmed publishing from a multi-threaded web server.

pika connections are not thread-safe, so request threads never touch one. A small pool of
publisher threads each owns one connection with a confirm channel; request threads hand
them a request (a job and its events) through a queue and wait on a Future. A thread takes
every request waiting (up to BATCH_MAX) at once: it publishes all their jobs, waits once for
all their confirms and settles each request by its own job's confirm, then does the same for
their events. One wake-up and two confirm waits serve the whole batch, not each request.

Only the first message of a request (the job) decides its outcome: a nacked or unroutable
job fails its own request alone and nothing after it is sent; later messages (the
`job.submitted` event) are best effort once the job is in. A lost connection is retried once
on a fresh one (a duplicate job is harmless: jobs are idempotent by id) and reopened in the
background with back-off; a batch it breaks falls back to serving its requests one by one.
A job that was sent but not confirmed fails as PublishInDoubt: the broker may hold it
(submit.py keeps its inputs).

During a memory or disk alarm RabbitMQ blocks a connection as soon as it publishes. The
connection is dropped the moment the broker says so, and for ALARM_HOLD_S after that jobs
are refused without being sent, so the gateway answers 503 at once instead of after pika's
blocked-connection timeout.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from services.gateway.loop_returns import LoopReturns
from shared.amqp import (
    Channel,
    ConfirmObserver,
    Connection,
    compute_backoff,
    connect_once,
    send_frames_together,
)
from shared.config import Settings
from shared.errors import BrokerError, BrokerUnavailable, PublishInDoubt, PublishNacked
from shared.log import get_logger
from shared.topology import ensure_topology

log = get_logger(__name__)
_IDLE_S = 0.2
# A request not picked up by a publisher thread within this time is given up (503).
QUEUE_TIMEOUT_S = 15.0
# After the broker blocked a publish (memory/disk alarm), refuse jobs without trying for this
# long: one publish per hold finds out whether the alarm is over.
ALARM_HOLD_S = 2.0
# At most this many requests are published together on one channel.
BATCH_MAX = 64


def _give_up_unless_taken(
    future: Future[None], waiter: asyncio.Future[None], timeout: float
) -> None:
    """`publish`'s timeout for `publish_async`: a request no thread has taken is never
    published (503); one being published is waited for (pika's own timeouts bound it)."""
    if future.cancel() and not waiter.done():
        waiter.set_exception(BrokerUnavailable(f"no publisher free within {timeout:.0f} s"))


@dataclass(frozen=True)
class Outgoing:
    """One message to publish (persistent, mandatory, confirmed)."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    headers: dict[str, str] | None = None


@dataclass
class _Request:
    messages: Sequence[Outgoing]
    future: Future[None]


Connector = Callable[[Settings, str], Connection]
# A blocked connection is given up at once: the request it carries gets its answer now.
connect_dropping_when_blocked: Connector = partial(connect_once, when_blocked="drop")


class JobPublisher(Protocol):
    """What the web side needs of a publisher (tests put a stub behind it)."""

    @property
    def connected(self) -> bool: ...
    @property
    def last_error(self) -> str: ...
    def start(self) -> None: ...
    def close(self) -> None: ...
    def send(self, messages: Sequence[Outgoing]) -> Future[None]: ...
    def publish(self, messages: Sequence[Outgoing], timeout: float = ...) -> None: ...


class _Link:
    """One publisher thread's connection and confirm channel."""

    def __init__(self, connection: Connection, channel: Channel) -> None:
        self.connection = connection
        self.channel = channel

    @property
    def is_open(self) -> bool:
        return self.connection.is_open and self.channel.is_open

    def close(self) -> None:
        self.connection.close()


class Publisher:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        threads: int | None = None,
        connector: Connector = connect_dropping_when_blocked,
        confirms: ConfirmObserver | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self._confirms = confirms  # each confirm's latency (jobsuite_publish_confirm_seconds)
        self._connector = connector
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"publisher-{i}", daemon=True)
            for i in range(threads or settings.gateway_publishers)
        ]
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._stopping = threading.Event()
        self._connected: set[int] = set()
        self._connected_lock = threading.Lock()  # one "all connected" line, not one per thread
        self._last_error = "not connected yet"
        self._alarm_reason = ""
        self._alarm_until = 0.0
        self._loop_returns: LoopReturns | None = None

    # --- for request threads --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._connected)

    @property
    def last_error(self) -> str:
        return self._last_error

    def start(self) -> None:
        send_frames_together()  # a batch's jobs, then its events, each in one send
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        while True:  # whatever no thread took will never be published: say so now
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(BrokerUnavailable("the gateway is shutting down"))

    def send(self, messages: Sequence[Outgoing]) -> Future[None]:
        """Queue a batch; the Future ends when the first message is confirmed (or failed)."""
        future: Future[None] = Future()
        if self._stopping.is_set():
            future.set_exception(BrokerUnavailable("the gateway is shutting down"))
        else:
            self._requests.put(_Request(messages, future))
        return future

    def publish(self, messages: Sequence[Outgoing], timeout: float = QUEUE_TIMEOUT_S) -> None:
        """Publish and wait for the confirm; raises BrokerError when the job is not in."""
        future = self.send(messages)
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            if future.cancel():  # never picked up: it will never be published
                raise BrokerUnavailable(f"no publisher free within {timeout:.0f} s") from None
            # Being published right now: pika's own timeouts bound how long that takes.
            future.result()

    async def publish_async(
        self, messages: Sequence[Outgoing], timeout: float = QUEUE_TIMEOUT_S
    ) -> None:
        """`publish` for a coroutine: the same outcome and timeout, awaited on the event loop
        instead of blocking a thread (the request holds no thread while the broker confirms)."""
        returns = self._returns_to(asyncio.get_running_loop())
        future = self.send(messages)
        waiter = returns.watch(future)
        timer = returns.loop.call_later(timeout, _give_up_unless_taken, future, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()

    def _returns_to(self, loop: asyncio.AbstractEventLoop) -> LoopReturns:
        returns = self._loop_returns
        if returns is None or returns.loop is not loop:  # one loop in the service, tests more
            returns = self._loop_returns = LoopReturns(loop)
        return returns

    # --- publisher threads ----------------------------------------------------------------

    def _run(self, index: int) -> None:
        link: _Link | None = None
        failures = 0
        next_try = 0.0
        while not self._stopping.is_set():
            if link is None and time.monotonic() >= next_try:
                link = self._open(index)
                if link is None:
                    failures += 1
                    next_try = time.monotonic() + compute_backoff(failures, base=0.2, cap=5.0)
                else:
                    failures = 0
            if link is None and self._connected:
                # Another thread has a connection: leave the work to it until ours is back.
                self._stopping.wait(_IDLE_S / 4)
                continue
            try:
                request = self._requests.get(timeout=_IDLE_S)
            except queue.Empty:
                link = self._keep_alive(index, link)
                continue
            batch = [
                taken
                for taken in [request, *self._take_waiting(link)]
                if taken.future.set_running_or_notify_cancel()
            ]
            try:
                link = self._serve_all(index, link, batch)
            except Exception as e:  # a bug or an unwrapped pika error: fail these, go on
                log.exception("publisher_error", thread=index)
                for taken in batch:
                    if not taken.future.done():
                        taken.future.set_exception(BrokerUnavailable(f"{type(e).__name__}: {e}"))
                if link is not None:
                    self._drop(index, link)
                link = None
        if link is not None:
            self._drop(index, link)

    def _open(self, index: int) -> _Link | None:
        try:
            connection = self._connector(self.settings, self.name)
        except Exception as e:
            # BrokerError as a rule (its text names the cause); anything else is a bug, but
            # this thread must live on.
            error = str(e) if isinstance(e, BrokerError) else f"{type(e).__name__}: {e}"
            # Every thread retries on its own back-off: thread 0 says each step, the others
            # only what thread 0 has not just said, so a broker down is not 16 lines a step.
            said = index != 0 and error == self._last_error
            self._last_error = error
            (log.debug if said else log.warning)(
                "publisher_cannot_connect",
                thread=index,
                cause=getattr(e, "cause", "other"),
                error=error,
            )
            return None
        try:
            ensure_topology(connection, self.settings)
            channel = connection.channel(confirm=True, confirms=self._confirms)
        except BrokerError as e:
            self._last_error = str(e)
            connection.close()
            log.warning("publisher_cannot_open_channel", thread=index, error=str(e))
            return None
        log.debug("publisher_connected", thread=index, node=connection.node)
        with self._connected_lock:
            self._connected.add(index)
            if len(self._connected) == len(self._threads):
                log.info("publishers_connected", threads=len(self._threads), node=connection.node)
        return _Link(connection, channel)

    def _drop(self, index: int, link: _Link) -> None:
        self._connected.discard(index)
        link.close()

    def _keep_alive(self, index: int, link: _Link | None) -> _Link | None:
        """Idle: let pika answer heartbeats and notice a connection closed by the broker."""
        if link is None:
            return None
        try:
            link.connection.pump(0)
            if link.is_open:
                return link
            raise BrokerUnavailable("connection closed")
        except BrokerError as e:
            self._last_error = str(e)
            log.warning("publisher_connection_lost", thread=index, error=str(e))
            self._drop(index, link)
            return None

    def _take_waiting(self, link: _Link | None) -> list[_Request]:
        """The requests waiting now, to publish together with the one just taken. Only a
        channel that tells each message's confirm apart can carry several (not a test's
        scripted one, nor no channel yet): else one request at a time."""
        if link is None or not isinstance(link.channel, Channel):
            return []
        waiting: list[_Request] = []
        while len(waiting) < BATCH_MAX - 1:
            try:
                waiting.append(self._requests.get_nowait())
            except queue.Empty:
                break
        return waiting

    def _serve_all(self, index: int, link: _Link | None, batch: list[_Request]) -> _Link | None:
        if len(batch) == 1:
            return self._serve(index, link, batch[0])
        if not batch:
            return link
        assert link is not None  # _take_waiting batches only on an open link
        if (alarm := self._alarm()) is not None:
            for request in batch:
                request.future.set_exception(BrokerUnavailable(alarm))
            return link
        return self._serve_batch(index, link, batch)

    def _serve_batch(self, index: int, link: _Link, batch: list[_Request]) -> _Link | None:
        """Publish every job of the batch, wait once, settle each request by its own job."""
        sent = 0  # the first `sent` jobs may have reached the broker
        try:
            for request in batch:
                _publish(link.channel, request.messages[0], wait=False)
                sent += 1
            refused = link.channel.wait_for_confirms_each()
        except BrokerError as e:
            return self._batch_broken(index, link, batch, sent, e)
        accepted: list[_Request] = []
        for request in batch:
            why = refused.get(request.messages[0].message_id)
            if why is None:
                request.future.set_result(None)
                accepted.append(request)
            else:  # nacked or unroutable: this job alone, the connection is still fine
                request.future.set_exception(PublishNacked(why))
        return self._send_rests(index, link, [m for r in accepted for m in r.messages[1:]])

    def _batch_broken(
        self,
        index: int,
        link: _Link,
        batch: list[_Request],
        sent: int,
        error: BrokerError,
    ) -> _Link | None:
        """The batch failed as a whole (most often a lost connection): serve each request on
        its own, as a retry; a job already sent stays in doubt should that retry fail too."""
        self._last_error = str(error)
        log.warning("publisher_connection_lost", thread=index, error=str(error))
        if (reason := link.connection.blocked_reason) is not None:
            self._hold_alarm(reason)
        self._drop(index, link)
        new_link: _Link | None = None
        for i, request in enumerate(batch):
            in_doubt = _in_doubt(error) if i < sent else None
            new_link = self._serve(index, new_link, request, in_doubt=in_doubt, tries=1)
        return new_link

    def _serve(
        self,
        index: int,
        link: _Link | None,
        request: _Request,
        *,
        in_doubt: PublishInDoubt | None = None,
        tries: int = 2,
    ) -> _Link | None:
        """Publish one request's job and wait for its confirm, trying `tries` connections.
        `in_doubt`: an earlier try may have reached the broker (kept should these fail)."""
        first, *rest = request.messages
        for attempt in range(1, tries + 1):
            if (alarm := self._alarm()) is not None:
                request.future.set_exception(in_doubt or BrokerUnavailable(alarm))
                return link
            if link is None:
                link = self._open(index)
            if link is None:
                unreachable = BrokerUnavailable(f"the broker is unreachable: {self._last_error}")
                request.future.set_exception(in_doubt or unreachable)
                return None
            try:
                _publish(link.channel, first)
                break
            except BrokerUnavailable as e:
                self._last_error = str(e)
                log.warning("publisher_connection_lost", thread=index, error=str(e))
                if (reason := link.connection.blocked_reason) is not None:
                    self._hold_alarm(reason)
                self._drop(index, link)
                link = None
                in_doubt = e if isinstance(e, PublishInDoubt) else in_doubt
                if attempt == tries:
                    request.future.set_exception(in_doubt or e)
                    return None
            except BrokerError as e:  # nacked or unroutable: the connection is still fine
                request.future.set_exception(in_doubt or e)
                return link
        request.future.set_result(None)
        return self._send_rest(index, link, rest)

    def _hold_alarm(self, reason: str) -> None:
        """The broker blocks publishing: refuse at once for a while rather than block again."""
        self._alarm_reason = reason
        self._alarm_until = time.monotonic() + ALARM_HOLD_S
        log.warning("broker_alarm_refusing_jobs", reason=reason, for_s=ALARM_HOLD_S)

    def _alarm(self) -> str | None:
        """Why jobs are refused without trying, while a broker alarm is held; else None."""
        if time.monotonic() >= self._alarm_until:
            return None
        return (
            f"RabbitMQ refuses new messages ({self._alarm_reason}: a memory or disk alarm); "
            "nothing was sent"
        )

    def _send_rests(self, index: int, link: _Link, rests: list[Outgoing]) -> _Link | None:
        """A batch's events, best effort: published together, each refusal logged."""
        if not rests:
            return link
        try:
            for message in rests:
                _publish(link.channel, message, wait=False)
            refused = link.channel.wait_for_confirms_each()
        except BrokerError as e:
            for message in rests:
                log.warning("event_not_published", message_id=message.message_id, error=str(e))
            if link.is_open:
                return link
            self._drop(index, link)
            return None
        for message_id, why in refused.items():
            log.warning("event_not_published", message_id=message_id, error=why)
        return link

    def _send_rest(self, index: int, link: _Link | None, rest: list[Outgoing]) -> _Link | None:
        for message in rest:
            if link is None:
                log.warning("event_not_published", message_id=message.message_id)
                continue
            try:
                _publish(link.channel, message)
            except BrokerError as e:
                log.warning("event_not_published", message_id=message.message_id, error=str(e))
                if not link.is_open:
                    self._drop(index, link)
                    link = None
        return link


def _in_doubt(error: BrokerError) -> PublishInDoubt:
    """A job sent before `error` may be on the broker, whatever the error says."""
    if isinstance(error, PublishInDoubt):
        return error
    return PublishInDoubt(f"sent, but not confirmed: {error}")


def _publish(channel: Channel, message: Outgoing, *, wait: bool = True) -> None:
    """Send `message`; with `wait`, block until the broker confirms it (else a later wait
    for confirms covers it)."""
    send = channel.publish if wait else channel.publish_nowait
    send(
        message.exchange,
        message.routing_key,
        message.body,
        message_id=message.message_id,
        message_type=message.message_type,
        headers=message.headers,
    )
