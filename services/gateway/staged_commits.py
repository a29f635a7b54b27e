"""The flush of uploads staged on the event loop, from a few threads of this module's own, the
uploads of one turn of the loop together.

Under load several requests reach their flush in the same turn of the loop (their bodies came
in one read of the sockets). Each handing its flush to a thread of its own cost a thread's
wake-up, the GIL handed back and forth around every system call of the flush, and the loop's
wake-up for the answer: about a quarter of the gateway's CPU per upload
(docs/performance.md). Here the turn's flushes go to one thread as one batch, done one after
another, and their answers come back to the loop in one call. Up to `THREADS` batches are
flushed at once, so a disk that is slow to flush still has flushes in parallel, as before.

Only a folder store's staged files gather (a local flush, tens of microseconds to a few
milliseconds); an S3 store's PUT, a network round trip each, keeps a thread of its own.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from shared.blobs.store import StagedBlob
from shared.errors import BlobError
from shared.files import StagedFile
from shared.log import get_logger

log = get_logger(__name__)
THREADS = 4  # batches flushed at once at most
Loop = asyncio.AbstractEventLoop


@dataclass(eq=False)
class _Flush:
    staged: StagedFile
    done: asyncio.Future[None]
    handed: bool = False  # in a thread's hands: only that thread touches `staged` now
    withdrawn: bool = False  # its request was cancelled before it was handed: not flushed


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
        self._threads = 0
        self._idle = 0

    async def commit(self, staged: StagedBlob) -> None:
        """Return once `staged` is stored (`StagedBlob.commit`); raise what that raised, and
        then nothing is kept of it. Cancelled while a thread flushes it, this waits for the
        flush to end before it lets the cancellation through, so the caller may then clean
        up whatever is left (`discard()` and the blob's removal, as after a thread hop)."""
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
            if not flush.handed:
                flush.withdrawn = True
                raise
            await _outcome_whatever(flush.done)
            raise

    def _forget_closed_loops(self) -> None:
        for loop in [loop for loop in self._gathering if loop.is_closed()]:
            del self._gathering[loop]

    def _hand(self, batch: _Batch) -> None:
        if self._gathering.get(batch.loop) is batch:
            del self._gathering[batch.loop]
        batch.flushes = [f for f in batch.flushes if not f.withdrawn]
        if not batch.flushes:
            return
        for flush in batch.flushes:
            flush.handed = True
        try:
            self._thread_for_it()
        except RuntimeError as e:  # no thread to be had: nothing is flushed, nothing kept
            for flush in batch.flushes:
                flush.staged.discard()
            _answer(batch, [BlobError(f"cannot flush the upload: {e}")] * len(batch.flushes))
            return
        self._inbox.put(batch)

    def _thread_for_it(self) -> None:
        """A thread is idle or starts for the batch about to be put in the inbox, unless
        `THREADS` are busy (it then waits for the first of them)."""
        with self._lock:
            if self._idle > 0 or self._threads >= self._max_threads:
                return
            self._threads += 1
        try:
            # A daemon: a flush stuck on a dead disk does not hold the gateway's exit (its
            # request has no answer, so nothing was promised of it).
            threading.Thread(target=self._serve, name="upload-flush", daemon=True).start()
        except BaseException:
            with self._lock:
                self._threads -= 1
            raise

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            batch = self._inbox.get()
            with self._lock:
                self._idle -= 1
            outcomes = [_flushed(flush.staged) for flush in batch.flushes]
            try:
                batch.loop.call_soon_threadsafe(_answer, batch, outcomes)
            except RuntimeError:  # its loop has closed: no one waits for the answer
                log.warning("upload_flush_unanswered", uploads=len(batch.flushes))


def _flushed(staged: StagedFile) -> Exception | None:
    try:
        staged.commit()
    except Exception as e:  # commit() kept nothing of it; its request is told
        return e
    except BaseException as e:  # not for a future to carry: its request gets a 503
        return BlobError(f"the upload's flush was interrupted: {e!r}")
    return None


def _answer(batch: _Batch, outcomes: list[Exception | None]) -> None:
    for flush, outcome in zip(batch.flushes, outcomes, strict=True):
        if flush.done.done():
            continue
        if outcome is None:
            flush.done.set_result(None)
        else:
            flush.done.set_exception(outcome)


async def _outcome_whatever(done: asyncio.Future[None]) -> None:
    """Wait for `done` however often this task is cancelled meanwhile; its outcome is not
    asked for (the caller goes on with its own cancellation)."""
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            continue
        except BaseException:
            break
    if not done.cancelled():
        done.exception()  # retrieved, so asyncio does not log it as never retrieved
