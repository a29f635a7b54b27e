"""The records of jobs accepted on the event loop, written together: the requests whose
confirms came in one turn of the loop (the broker confirms several messages in one frame)
resume in that turn, and their jobs go into the ledger in one transaction after it, instead
of a transaction each. Each request still answers only once its own job is recorded, so
`GET /jobs/{id}` finds it right after the 202, as before."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.errors import StateError
from shared.state import AcceptedJob, SubmissionLedger


@dataclass
class _Turn:
    """The jobs waiting for one write on one loop."""

    loop: asyncio.AbstractEventLoop
    waiting: list[tuple[AcceptedJob, asyncio.Future[None]]] = field(default_factory=list)


class AcceptedBatch:
    def __init__(self, ledger: SubmissionLedger) -> None:
        self._ledger = ledger
        self._turn: _Turn | None = None

    async def record(self, job: AcceptedJob) -> None:
        """Return once `job` is in the ledger with the others of this turn; raise what the
        write raised (StateError) for all of them."""
        loop = asyncio.get_running_loop()
        turn = self._turn
        # Another loop's turn (a loop closed before its write ran, say) is none of ours.
        if turn is None or turn.loop is not loop:
            turn = self._turn = _Turn(loop)
            # After every callback already due: the requests resumed in this turn join in.
            loop.call_soon(self._write, turn)
        written = loop.create_future()
        turn.waiting.append((job, written))
        await written

    def _write(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._turn = None
        try:
            self._ledger.accepted_jobs([job for job, _ in turn.waiting])
        except BaseException as e:  # every waiter logs it and answers 202 all the same
            error = e if isinstance(e, Exception) else StateError(f"cannot record: {e!r}")
            for _, written in turn.waiting:
                if not written.done():  # a request cancelled meanwhile waits for nothing
                    written.set_exception(error)
            if error is not e:
                raise
            return
        for _, written in turn.waiting:
            if not written.done():
                written.set_result(None)
