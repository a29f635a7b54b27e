"""The flush of uploads staged on the event loop, from a few threads of this module's own, the
uploads of one turn of the loop together.

Under load several requests reach their flush in the same turn of the loop (their bodies came
in one read of the sockets: 5-7 a turn under wrk with 32 connections). Each handing its flush
to a thread of its own cost a thread's wake-up and the loop's for the answer, each time.
Here the turn's flushes go to one thread as one batch, done one after another, and their
answers come back to the loop in one call: on tmpfs, 1.99 against 2.36 ms of gateway CPU
per upload (docs/performance-history.md). Up to `THREADS` batches are flushed at once, so a disk
slow to flush still has flushes in parallel; a batch queued behind them is still its
requests' to cancel.

Only a folder store's staged files gather (a local flush, tens of microseconds to a few
milliseconds); an S3 store's PUT, a network round trip each, keeps a thread of its own.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from contextlib import suppress
from dataclasses import dataclass, field

import anyio
from starlette.concurrency import run_in_threadpool

from shared.blobs.store import StagedBlob
from shared.errors import BlobError
from shared.files import StagedFile
from shared.log import get_logger

log = get_logger(__name__)
THREADS = 4  # batches flushed at once at most
Loop = asyncio.AbstractEventLoop


_WAITING, _TAKEN, _WITHDRAWN = "waiting", "taken", "withdrawn"


@dataclass(eq=False)
class _Flush:
    staged: StagedFile
    done: asyncio.Future[None]
    # waiting (for a thread) -> taken (by one: only it touches `staged` from then on) or
    # withdrawn (its request was cancelled first: it is not flushed); changed under the lock
    state: str = _WAITING


@dataclass(eq=False)
class _Batch:
    loop: Loop
    flushes: list[_Flush] = field(default_factory=list)


class StagedCommits:
    def __init__(self, threads: int = THREADS) -> None:
        self._max_threads = threads
        self._gathering: dict[Loop, _Batch] = {}  # per loop: its turn's batch, not yet handed
        self._inbox: queue.SimpleQueue[_Batch] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # started and not ended
        self._idle = 0  # of those, waiting for a batch
        self._queued = 0  # batches in the inbox, not yet taken

    async def commit(self, staged: StagedBlob) -> None:
        """Return once `staged` is stored (`StagedBlob.commit`); raise what that raised, and
        then nothing is kept of it. Cancelled while a thread flushes it, this waits for the
        flush to end before it lets the cancellation through, so the caller may then clean
        up whatever is left (`discard()` and the blob's removal, as after a thread hop);
        cancelled before a thread took it, it is not flushed and returns at once."""
        if not isinstance(staged, StagedFile):
            await run_in_threadpool(staged.commit)
            return
        loop = asyncio.get_running_loop()
        flush = _Flush(staged, loop.create_future())
        batch = self._gathering.get(loop)
        if batch is None:
            self._forget_closed_loops()
            batch = self._gathering[loop] = _Batch(loop)
            # After every callback already due: the requests resumed in this turn join in.
            loop.call_soon(self._hand, batch)
        batch.flushes.append(flush)
        try:
            await asyncio.shield(flush.done)
        except asyncio.CancelledError:
            with self._lock:
                withdrawn = flush.state == _WAITING
                if withdrawn:
                    flush.state = _WITHDRAWN
            if withdrawn:
                raise
            await _outcome_whatever(flush.done)
            raise

    def _forget_closed_loops(self) -> None:
        for loop in [loop for loop in self._gathering if loop.is_closed()]:
            del self._gathering[loop]

    def _hand(self, batch: _Batch) -> None:
        if self._gathering.get(batch.loop) is batch:
            del self._gathering[batch.loop]
        with self._lock:
            self._queued += 1
            start = self._queued > self._idle and self._threads < self._max_threads
            if start:
                self._threads += 1
        if start:
            try:
                # A daemon: a flush stuck on a dead disk does not hold the gateway's exit
                # (its request has no answer, so nothing was promised of it).
                threading.Thread(target=self._serve, name="upload-flush", daemon=True).start()
            except BaseException as e:
                with self._lock:
                    self._threads -= 1
                    orphaned = self._threads == 0  # no thread to take it, ever
                    if orphaned:
                        self._queued -= 1
                if orphaned:  # nothing flushed, nothing kept
                    _refuse(batch, BlobError(f"cannot flush the upload: {e}"))
                    return
                # else a thread already there takes it once it is free
        self._inbox.put(batch)

    def _serve(self) -> None:
        try:
            while True:
                with self._lock:
                    self._idle += 1
                batch = self._inbox.get()
                with self._lock:
                    self._idle -= 1
                    self._queued -= 1
                    for flush in batch.flushes:
                        if flush.state == _WAITING:
                            flush.state = _TAKEN
                outcomes = [
                    _flushed(f.staged) if f.state == _TAKEN else None for f in batch.flushes
                ]
                with suppress(RuntimeError):  # its loop has closed: no one waits for it
                    batch.loop.call_soon_threadsafe(_answer, batch, outcomes)
        finally:  # never, but for the interpreter's end: another thread starts when needed
            with self._lock:
                self._threads -= 1


def _flushed(staged: StagedFile) -> Exception | None:
    try:
        staged.commit()
    except Exception as e:  # commit() kept nothing of it; its request is told
        return e
    except BaseException as e:  # not for a future to carry: its request gets a 503
        return BlobError(f"the upload's flush was interrupted: {e!r}")
    return None


def _refuse(batch: _Batch, error: BlobError) -> None:
    """Every flush of `batch` refused, its staged file dropped, on the loop."""
    for flush in batch.flushes:
        try:
            flush.staged.discard()
        except Exception as e:  # its request is answered all the same
            log.warning("staged_upload_not_discarded", error=repr(e))
    _answer(batch, [error] * len(batch.flushes))


def _answer(batch: _Batch, outcomes: list[Exception | None]) -> None:
    for flush, outcome in zip(batch.flushes, outcomes, strict=True):
        if flush.done.done():
            continue
        if outcome is None:
            flush.done.set_result(None)
        else:
            flush.done.set_exception(outcome)


async def _outcome_whatever(done: asyncio.Future[None]) -> None:
    """Wait for `done` however the task is cancelled meanwhile; its outcome is not asked for
    (the caller goes on with its own cancellation). The shield keeps an anyio cancel scope's
    cancellation (Starlette's), which strikes again at every await, from turning this wait
    into a spin; a plain `Task.cancel()` still comes through once each, and is waited out."""
    with anyio.CancelScope(shield=True):
        while not done.done():
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
    if not done.cancelled():
        done.exception()  # retrieved, so asyncio does not log it as never retrieved
