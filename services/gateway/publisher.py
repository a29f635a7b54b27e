"""Confirmed publishing on the gateway's event loop.

The publisher lives on the loop that serves the requests (uvicorn's; a thread running a
loop of its own when started outside one: tools and tests). Each of GATEWAY_PUBLISHERS
connections is a link on that loop (shared/amqp/loop_link.py): a request publishes its job
and awaits that job's own confirm, with no thread hand-over either way, and the requests in
flight together share the channel and the broker's `multiple` confirms. Threads (a keyed or
mail submission, a deletion) publish through `publish` or `send`, which hand the request to
the loop.

Only the first message of a request (the job) decides its outcome: a nacked or unroutable
job fails its own request alone and nothing after it is sent; later messages (the
`job.submitted` event) follow once the job is confirmed, without the request waiting for
them. One refused or lost (as while the event queue elects a new leader after a node died)
is sent again, with its id, after each of EVENT_RESENDS_S, on whichever connection is open
then; past the last it is logged (`event_not_published`). A
lost connection is retried once on a fresh one (a duplicate job is harmless: jobs are
idempotent by id), and every connection is reopened in the background with back-off. A job
that was sent but not confirmed fails as PublishInDoubt: the broker may hold it (submit.py
keeps its inputs).

During a memory or disk alarm RabbitMQ blocks a connection as soon as it publishes. The
link drops the connection the moment the broker says so, and for ALARM_HOLD_S after that
jobs are refused without being sent, so the gateway answers 503 at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from services.gateway.publish_links import Connector, Link, open_publishing_link
from shared.amqp import ConfirmObserver, compute_backoff
from shared.config import Settings
from shared.errors import BrokerError, BrokerUnavailable, PublishInDoubt
from shared.log import get_logger

log = get_logger(__name__)
# How often an idle connection is looked at (closed by the broker meanwhile?).
_IDLE_S = 0.2
# A request sent before the publisher started, not taken within this time, is given up (503).
QUEUE_TIMEOUT_S = 15.0
# A job sent and not confirmed within this time is in doubt (a 503 that says so), and its
# connection is dropped: confirms come in order, so the others on it wait as long. A broker
# that keeps its connections alive but confirms nothing (a quorum queue without a majority)
# would otherwise hold each request, and each keyed submission's Idempotency-Key, for good.
CONFIRM_TIMEOUT_S = 30.0
# After the broker blocked a publish (memory/disk alarm), refuse jobs without trying for this
# long: one publish per hold finds out whether the alarm is over.
ALARM_HOLD_S = 2.0
# Seconds before each resend of a refused or lost event: a quorum queue's new leader is
# usually elected within a few seconds of its node's death.
EVENT_RESENDS_S = (0.5, 2.0, 5.0)
_SHUTTING_DOWN = "the gateway is shutting down"


@dataclass(frozen=True)
class Outgoing:
    """One message to publish (persistent, mandatory, confirmed)."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    headers: dict[str, str] | None = None


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


class _Slot:
    """One of the publisher's connections: its link while open, and the open in progress
    that every request needing it shares."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.link: Link | None = None
        self.opening: asyncio.Task[Link | None] | None = None
        self.keeper: asyncio.Task[None] | None = None

    @property
    def open_link(self) -> Link | None:
        return self.link if self.link is not None and self.link.is_open else None


class Publisher:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        connections: int | None = None,
        connector: Connector | None = None,
        confirms: ConfirmObserver | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        # Each confirm's latency (jobsuite_publish_confirm_seconds) goes to `confirms`.
        self._connector = connector or partial(open_publishing_link, confirms=confirms)
        self._slots = [_Slot(i) for i in range(connections or settings.gateway_publishers)]
        self._next = 0  # the slot the next request starts looking at
        self._lock = threading.Lock()  # the loop, and what waits for it, against threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_thread: threading.Thread | None = None  # when started outside a loop
        self._before_start: list[tuple[Sequence[Outgoing], Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # requests from threads, in progress
        self._resends: set[asyncio.Task[None]] = set()  # refused events waiting to go again
        self._stopping = False
        self._all_connected = False  # one "all connected" line per time they all are
        self._last_error = "not connected yet"
        self._alarm_reason = ""
        self._alarm_until = 0.0

    # --- for request threads and coroutines ------------------------------------------------

    @property
    def connected(self) -> bool:
        return any(slot.open_link is not None for slot in self._slots)

    @property
    def last_error(self) -> str:
        return self._last_error

    def start(self) -> None:
        """Start on the running loop, or on a thread of its own when there is none."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = self._start_own_loop()
        with self._lock:
            self._loop = loop
            waiting, self._before_start = self._before_start, []
        _on_loop(loop, self._begin, waiting)

    def close(self) -> None:
        """Refuse new requests and close the connections; safe to call again, and from any
        thread (on the publisher's own loop, `aclose` also waits for the clean close)."""
        loop = self._stop_taking()
        if loop is None or loop.is_closed():
            return
        own = self._own_thread
        if own is None or _running_loop() is loop:
            with suppress(RuntimeError):  # the loop ended meanwhile: nothing left to stop
                _on_loop(loop, self._stop_now)
            return
        if not own.is_alive():
            return  # closed before
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            own.join(timeout=5)

    async def aclose(self) -> None:
        """`close` on the publisher's own loop (the gateway's lifespan), waiting there until
        its connections have closed cleanly, which `close` cannot without blocking the loop."""
        if self._loop is None or _running_loop() is not self._loop:
            self.close()
            return
        self._stop_taking()
        await self._stop()

    def _stop_taking(self) -> asyncio.AbstractEventLoop | None:
        """Take no more requests; those never taken are refused now. The loop, if started."""
        with self._lock:
            self._stopping = True
            loop = self._loop
            waiting, self._before_start = self._before_start, []
        for _, future in waiting:  # never taken, so never published: say so now
            if future.set_running_or_notify_cancel():
                future.set_exception(BrokerUnavailable(_SHUTTING_DOWN))
        return loop

    def send(self, messages: Sequence[Outgoing]) -> Future[None]:
        """Hand a request to the loop; the Future ends when its job is confirmed (or failed)."""
        future: Future[None] = Future()
        with self._lock:
            loop = self._loop
            if self._stopping:
                future.set_exception(BrokerUnavailable(_SHUTTING_DOWN))
            elif loop is None:  # taken once started
                self._before_start.append((messages, future))
            if self._stopping or loop is None:
                return future
        try:
            _on_loop(loop, self._take, messages, future)
        except RuntimeError:  # the loop has ended
            if future.set_running_or_notify_cancel():
                future.set_exception(BrokerUnavailable(_SHUTTING_DOWN))
        return future

    def publish(self, messages: Sequence[Outgoing], timeout: float = QUEUE_TIMEOUT_S) -> None:
        """Publish from a thread and wait for the confirm; raises BrokerError when the job is
        not in. Never on the publisher's own loop: that would wait for itself."""
        if self._loop is not None and _running_loop() is self._loop:
            raise RuntimeError("Publisher.publish on its own event loop: await publish_async")
        future = self.send(messages)
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            if future.cancel():  # never taken: it will never be published
                raise BrokerUnavailable(f"no publisher free within {timeout:.0f} s") from None
            # Being published: the broker's answer, or the connection's end, bounds the wait.
            future.result()

    async def publish_async(
        self, messages: Sequence[Outgoing], timeout: float = QUEUE_TIMEOUT_S
    ) -> None:
        """`publish` for a coroutine. On the publisher's own loop (the gateway's routes) the
        request is served right here; from another loop it is handed over as from a thread."""
        if self._loop is not None and _running_loop() is self._loop:
            if self._stopping:
                raise BrokerUnavailable(_SHUTTING_DOWN)
            await self._request(messages)
            return
        future = self.send(messages)
        waiting = asyncio.wrap_future(future)
        try:
            await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            if future.cancel():
                raise BrokerUnavailable(f"no publisher free within {timeout:.0f} s") from None
            await waiting

    # --- on the loop ----------------------------------------------------------------------

    def _start_own_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        running = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(running.set)
            loop.run_forever()
            loop.close()

        self._own_thread = threading.Thread(target=run, name="publisher", daemon=True)
        self._own_thread.start()
        running.wait()
        return loop

    def _begin(self, waiting: list[tuple[Sequence[Outgoing], Future[None]]]) -> None:
        loop = self._running()
        for slot in self._slots:
            slot.keeper = loop.create_task(self._keep(slot))
        for messages, future in waiting:
            self._take(messages, future)

    def _take(self, messages: Sequence[Outgoing], future: Future[None]) -> None:
        """A request from a thread (or from before the start): served as a task."""
        if not future.set_running_or_notify_cancel():
            return  # withdrawn by its caller's timeout
        sent = _Sent()
        task = self._running().create_task(self._request(messages, sent))
        self._tasks.add(task)
        task.add_done_callback(partial(self._answer, future, sent))

    def _answer(self, future: Future[None], sent: _Sent, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():  # the loop ended under it: a job already sent may be queued
            future.set_exception(
                PublishInDoubt(f"{_SHUTTING_DOWN}; the job was sent, its confirm not seen")
                if sent.job
                else BrokerUnavailable(_SHUTTING_DOWN)
            )
        elif (error := task.exception()) is not None:
            future.set_exception(error)
        else:
            future.set_result(None)

    def _stop_now(self) -> None:
        """Stop keeping connections and close them (requests in flight end in doubt), and
        the events waiting to be sent again (each logged as not published)."""
        for resend in list(self._resends):
            resend.cancel()
        for slot in self._slots:
            if slot.keeper is not None:
                slot.keeper.cancel()
            if slot.link is not None:
                slot.link.close()

    async def _stop(self) -> None:
        """`_stop_now`, then wait for what it stopped: requests in progress, keepers, and
        each connection's clean close."""
        self._stop_now()
        slots = self._slots
        keeping = [t for s in slots for t in (s.keeper, s.opening) if t is not None]
        pending = [*self._tasks, *keeping]
        if pending:
            await asyncio.wait(pending, timeout=5)
        for slot in self._slots:
            if slot.link is not None:
                await slot.link.wait_closed(2)

    async def _request(self, messages: Sequence[Outgoing], sent: _Sent | None = None) -> None:
        try:
            await self._serve(messages, sent or _Sent())
        except BrokerError:
            raise
        except Exception as e:  # a bug, or an error pika let through: this request fails
            log.exception("publisher_error")
            raise BrokerUnavailable(f"{type(e).__name__}: {e}") from e

    async def _serve(self, messages: Sequence[Outgoing], sent: _Sent) -> None:
        """Publish the job and await its confirm, trying a fresh connection once when the
        connection fails; then send the rest. An earlier try that may have reached the
        broker (in doubt) is what a failure says, should the retry fail too. No confirm
        within CONFIRM_TIMEOUT_S: in doubt at once (a second wait would only double it)."""
        first, *rest = messages
        slot = self._pick()
        link = slot.open_link
        in_doubt: PublishInDoubt | None = None
        for attempt in (1, 2):
            if self._stopping:
                raise in_doubt or BrokerUnavailable(_SHUTTING_DOWN)
            if (alarm := self._alarm()) is not None:
                raise in_doubt or BrokerUnavailable(alarm)
            if link is None:
                link = await self._open(slot)
            if link is None:
                raise in_doubt or BrokerUnavailable(
                    f"the broker is unreachable: {self._last_error}"
                )
            try:
                await self._confirmed(link, first, sent)
                break
            except _NoConfirm as e:
                self._lost(slot, link, e)
                raise
            except BrokerUnavailable as e:
                self._lost(slot, link, e)
                link = None
                in_doubt = e if isinstance(e, PublishInDoubt) else in_doubt
                if attempt == 2:
                    raise in_doubt or e from None
            except BrokerError as e:  # nacked or unroutable: this job alone
                raise in_doubt or e from None
        assert link is not None  # the loop ended with a confirmed job
        self._send_rest(link, rest)

    async def _confirmed(self, link: Link, message: Outgoing, sent: _Sent) -> None:
        confirm = _publish(link, message)
        sent.job = True
        try:
            await asyncio.wait_for(asyncio.shield(confirm), CONFIRM_TIMEOUT_S)
        except TimeoutError:
            raise _NoConfirm(
                f"the broker confirmed nothing within {CONFIRM_TIMEOUT_S:g} s: the job was"
                " sent, and it may be queued"
            ) from None

    def _pick(self) -> _Slot:
        """The next connection that is open, in turn; the first when none is."""
        count = len(self._slots)
        for step in range(count):
            slot = self._slots[(self._next + step) % count]
            if slot.open_link is not None:
                self._next = (slot.index + 1) % count
                return slot
        return self._slots[0]

    def _send_rest(self, link: Link, rest: list[Outgoing]) -> None:
        """The request's events, sent now; the request does not wait for their confirms."""
        for message in rest:
            self._send_event(link, message, 0)

    def _send_event(self, link: Link, message: Outgoing, tries: int) -> None:
        """Send an event on `link` (its `tries`-th resend); refused or lost, again later."""
        try:
            confirmed = _publish(link, message)
        except BrokerError as e:
            self._resend_later(message, e, tries)
            return
        confirmed.add_done_callback(partial(self._event_answered, message, tries))

    def _event_answered(
        self, message: Outgoing, tries: int, confirmed: asyncio.Future[None]
    ) -> None:
        if not confirmed.cancelled() and (error := confirmed.exception()) is not None:
            self._resend_later(message, error, tries)

    def _resend_later(self, message: Outgoing, error: BaseException, tries: int) -> None:
        """On the loop: the event again after the next of EVENT_RESENDS_S; past the last
        (or while stopping), logged as not published."""
        if tries >= len(EVENT_RESENDS_S) or self._stopping:
            _not_published(message, error, tries)
            return
        resend = asyncio.get_running_loop().create_task(self._resend(message, error, tries))
        self._resends.add(resend)
        resend.add_done_callback(partial(self._resend_ended, message, error, tries))

    def _resend_ended(
        self, message: Outgoing, error: BaseException, tries: int, resend: asyncio.Task[None]
    ) -> None:
        self._resends.discard(resend)
        if resend.cancelled():  # the gateway stops (maybe before the task began)
            _not_published(message, error, tries)

    async def _resend(self, message: Outgoing, error: BaseException, tries: int) -> None:
        await asyncio.sleep(EVENT_RESENDS_S[tries])
        if (alarm := self._alarm()) is not None:
            # Held (a memory or disk alarm): a publish would only be blocked and renew the
            # hold; wait it out without spending a try.
            self._resend_later(message, BrokerUnavailable(alarm), tries)
            return
        slot = self._pick()
        link = slot.open_link or await self._open(slot)
        if link is None:
            self._resend_later(message, BrokerUnavailable(self._last_error), tries + 1)
            return
        log.info("event_sent_again", message_id=message.message_id, after=str(error))
        self._send_event(link, message, tries + 1)

    async def _open(self, slot: _Slot) -> Link | None:
        """The slot's link, opening one (shared by everyone asking meanwhile) if need be;
        None when the broker cannot be reached (`last_error` says why)."""
        if (link := slot.open_link) is not None:
            return link
        if slot.opening is None:
            slot.opening = self._running().create_task(self._connect(slot))
        return await asyncio.shield(slot.opening)

    async def _connect(self, slot: _Slot) -> Link | None:
        try:
            link = await self._connector(self.settings, self.name)
        except Exception as e:
            # BrokerError as a rule (its text names the cause); anything else is a bug, but
            # the publisher must live on.
            error = str(e) if isinstance(e, BrokerError) else f"{type(e).__name__}: {e}"
            # Each connection retries on its own back-off: the first says each step, the
            # others only what it has not just said, so a broker down is not N lines a step.
            said = slot.index != 0 and error == self._last_error
            self._last_error = error
            (log.debug if said else log.warning)(
                "publisher_cannot_connect",
                connection=slot.index,
                cause=getattr(e, "cause", "other"),
                error=error,
            )
            return None
        finally:
            slot.opening = None
        if self._stopping:  # opened as the publisher stopped: nobody would close it
            link.close()
            return None
        slot.link = link
        log.debug("publisher_connected", connection=slot.index, node=link.node)
        if not self._all_connected and all(s.open_link is not None for s in self._slots):
            self._all_connected = True
            log.info("publishers_connected", connections=len(self._slots), node=link.node)
        return link

    def _lost(self, slot: _Slot, link: Link, error: BrokerError) -> None:
        """`link` failed: the first to notice drops it (and holds a broker alarm off)."""
        self._last_error = str(error)
        if slot.link is not link:
            return  # already replaced
        slot.link = None
        self._all_connected = False
        log.warning("publisher_connection_lost", connection=slot.index, error=str(error))
        if (reason := link.blocked_reason) is not None:
            self._hold_alarm(reason)
        link.close()

    async def _keep(self, slot: _Slot) -> None:
        """Keep the slot's connection open: reopen it with back-off whenever it is lost,
        requests or none (an idle one closed by the broker is noticed too)."""
        failures = 0
        while not self._stopping:
            link = slot.link
            if link is not None and not link.is_open:
                self._lost(slot, link, link.failure or BrokerUnavailable("connection closed"))
                continue
            if link is None:
                link = await self._open(slot)
                if link is None:
                    failures += 1
                    await asyncio.sleep(compute_backoff(failures, base=0.2, cap=5.0))
                    continue
                failures = 0
            await link.wait_closed(_IDLE_S)

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

    def _running(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None  # only called on the loop, once started
        return self._loop


@dataclass
class _Sent:
    """Whether a request's job has gone out to the broker (then it may be queued)."""

    job: bool = False


class _NoConfirm(PublishInDoubt):
    """Sent, and no confirm within CONFIRM_TIMEOUT_S."""


def _publish(link: Link, message: Outgoing) -> asyncio.Future[None]:
    return link.publish(
        message.exchange,
        message.routing_key,
        message.body,
        message_id=message.message_id,
        message_type=message.message_type,
        headers=message.headers,
    )


def _not_published(message: Outgoing, error: BaseException, resends: int) -> None:
    log.warning(
        "event_not_published", message_id=message.message_id, error=str(error), resends=resends
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """Run `fn(*args)` on `loop`: now when this is its thread, else as soon as it can."""
    if _running_loop() is loop:
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)
