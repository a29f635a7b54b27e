"""The records of jobs accepted on the event loop, written together: the requests whose
confirms came in one turn of the loop (the broker confirms several messages in one frame)
resume in that turn, and their jobs go into the ledger in one transaction after it, instead
of a transaction each. Each request still answers only once its own job is recorded, so
`GET /jobs/{id}` finds it right after the 202, as before.

A ledger whose writes wait on a server (PostgreSQL: a round trip and the server's flush of
its log) is written from a thread of its own instead, so the loop goes on serving meanwhile
(and stalls for no dead path); the jobs of the turns that come while a write is under way go
together into the next one."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shared.errors import StateError
from shared.state import AcceptedJob, SubmissionLedger


@dataclass
class _Turn:
    """The jobs waiting for one write on one loop."""

    loop: asyncio.AbstractEventLoop
    waiting: list[tuple[AcceptedJob, asyncio.Future[None]]] = field(default_factory=list)
    written: bool = False  # its write began (it may be due twice when loops take turns)


class AcceptedBatch:
    def __init__(self, ledger: SubmissionLedger, *, off_loop: bool = False) -> None:
        self._ledger = ledger
        self._turn: _Turn | None = None
        self._writer = ThreadPoolExecutor(1, "accepted-jobs") if off_loop else None
        self._writing_on: asyncio.AbstractEventLoop | None = None  # a write under way there

    async def record(self, job: AcceptedJob) -> None:
        """Return once `job` is in the ledger with the others of this turn; raise what the
        write raised (StateError) for all of them."""
        loop = asyncio.get_running_loop()
        turn = self._turn
        # Another loop's turn (a loop closed before its write ran, say) is none of ours.
        if turn is None or turn.loop is not loop:
            turn = self._turn = _Turn(loop)
            if self._writing_on is not loop:  # else it goes once the write under way ends
                # After every callback already due: the requests resumed in this turn join in.
                loop.call_soon(self._write, turn)
        written = loop.create_future()
        turn.waiting.append((job, written))
        await written

    def _write(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._turn = None
        if turn.written:
            return
        turn.written = True
        jobs = [job for job, _ in turn.waiting]
        if self._writer is not None:
            self._writing_on = turn.loop
            writing = turn.loop.run_in_executor(self._writer, self._ledger.accepted_jobs, jobs)
            writing.add_done_callback(lambda _: self._written_off_loop(turn, writing))
            return
        try:
            self._ledger.accepted_jobs(jobs)
        except BaseException as e:
            if _answer(turn, e) is not e:
                raise
            return
        _answer(turn, None)

    def _written_off_loop(self, turn: _Turn, writing: asyncio.Future[None]) -> None:
        self._writing_on = None
        _answer(turn, writing.exception() if not writing.cancelled() else StateError("cancelled"))
        following = self._turn
        if following is not None and following.loop is turn.loop:
            self._write(following)


def _answer(turn: _Turn, error: BaseException | None) -> BaseException | None:
    """Each waiter of `turn` told its write's outcome; the error they were given (a
    StateError for anything but an Exception: every waiter logs it and answers 202 all the
    same)."""
    given = None
    if error is not None:
        given = error if isinstance(error, Exception) else StateError(f"cannot record: {error!r}")
    for _, written in turn.waiting:
        if written.done():  # a request cancelled meanwhile waits for nothing
            continue
        if given is None:
            written.set_result(None)
        else:
            written.set_exception(given)
    return given
