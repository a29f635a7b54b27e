"""The records of jobs accepted on the event loop, written together: the requests whose
confirms came in one turn of the loop (the broker confirms several messages in one frame)
resume in that turn, and their jobs go into the ledger in one transaction after it, instead
of a transaction each. Each request still answers only once its own job is recorded, so
`GET /jobs/{id}` finds it right after the 202, as before.

A ledger whose writes wait on a server (PostgreSQL: a round trip and the server's flush of
its log) is written from a thread of its own instead, so the loop goes on serving meanwhile
(and stalls for no dead path); the jobs of the turns that come while a write is under way go
together into the next one. A local ledger (SQLite) is written on the loop when that needs
no wait, and from that thread when another writer holds it (another gateway process sharing
STATE_DIR, an operator's sqlite3 session, a request thread): its busy handler would
otherwise sleep on the loop, up to its timeout, and every request of the process with it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.gateway.daemon_executor import DaemonThreadExecutor
from shared.errors import StateError
from shared.state import AcceptedJob, SubmissionLedger


@dataclass
class _Turn:
    """The jobs waiting for one write on one loop."""

    waiting: list[tuple[AcceptedJob, asyncio.Future[None]]] = field(default_factory=list)
    written: bool = False  # its write began


Loop = asyncio.AbstractEventLoop


class AcceptedBatch:
    def __init__(self, ledger: SubmissionLedger, *, off_loop: bool = False) -> None:
        self._ledger = ledger
        # Per loop (one in a gateway; tests run several): the turn still gathering jobs, and
        # whether a write is under way off it. Another loop's turn is none of ours.
        self._turns: dict[Loop, _Turn] = {}
        self._writing: set[Loop] = set()
        self._at_once = not off_loop  # try the write on the loop first
        # A daemon thread (started on first use): a write hung on a dead path does not hold
        # up the gateway's exit.
        self._writer = DaemonThreadExecutor("accepted-jobs")

    async def record(self, job: AcceptedJob) -> None:
        """Return once `job` is in the ledger with the others of this turn; raise what the
        write raised (StateError) for all of them."""
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            self._forget_closed_loops()
            turn = self._turns[loop] = _Turn()
            if loop not in self._writing:  # else it goes once the write under way ends
                # After every callback already due: the requests resumed in this turn join in.
                loop.call_soon(self._write, loop, turn)
        written = loop.create_future()
        turn.waiting.append((job, written))
        await written

    def _forget_closed_loops(self) -> None:
        """A loop that ended before its turn was written (its waiters are gone with it)."""
        for loop in [loop for loop in self._turns if loop.is_closed()]:
            del self._turns[loop]
        self._writing = {loop for loop in self._writing if not loop.is_closed()}

    def _write(self, loop: Loop, turn: _Turn) -> None:
        if self._turns.get(loop) is turn:
            del self._turns[loop]
        if turn.written:
            return
        turn.written = True
        jobs = [job for job, _ in turn.waiting]
        if self._at_once:
            try:
                written = self._ledger.accepted_jobs_at_once(jobs)
            except BaseException as e:
                if _answer(turn, e) is not e:
                    raise
                return
            if written:
                _answer(turn, None)
                return
        self._write_off_loop(loop, turn, jobs)

    def _write_off_loop(self, loop: Loop, turn: _Turn, jobs: list[AcceptedJob]) -> None:
        try:
            writing = loop.run_in_executor(self._writer, self._ledger.accepted_jobs, jobs)
        except Exception as e:  # no thread to be had, the executor shut down: no write
            _answer(turn, StateError(f"cannot record accepted jobs: {e!r}"))
            return
        self._writing.add(loop)
        writing.add_done_callback(lambda _: self._written_off_loop(loop, turn, writing))

    def _written_off_loop(self, loop: Loop, turn: _Turn, writing: asyncio.Future[None]) -> None:
        self._writing.discard(loop)
        _answer(turn, writing.exception() if not writing.cancelled() else StateError("cancelled"))
        following = self._turns.get(loop)
        if following is not None:
            self._write(loop, following)


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
