"""The records of jobs accepted on the event loop, written together: the requests whose
confirms came in one turn of the loop (the broker confirms several messages in one frame)
resume in that turn, and their jobs go into the ledger in one transaction after it, instead
of a transaction each. Each request still answers only once its own job is recorded, so
`GET /jobs/{id}` finds it right after the 202, as before."""

from __future__ import annotations

import asyncio

from shared.state import AcceptedJob, SubmissionLedger


class AcceptedBatch:
    def __init__(self, ledger: SubmissionLedger) -> None:
        self._ledger = ledger
        self._waiting: list[tuple[AcceptedJob, asyncio.Future[None]]] = []

    async def record(self, job: AcceptedJob) -> None:
        """Return once `job` is in the ledger with the others of this turn; raise what the
        write raised (StateError) for all of them."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # After every callback already due: the requests resumed in this turn join in.
            loop.call_soon(self._write)
        written = loop.create_future()
        self._waiting.append((job, written))
        await written

    def _write(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            self._ledger.accepted_jobs([job for job, _ in waiting])
        except Exception as e:  # every waiter logs it and answers 202 all the same
            for _, written in waiting:
                if not written.done():  # a request cancelled meanwhile waits for nothing
                    written.set_exception(e)
            return
        for _, written in waiting:
            if not written.done():
                written.set_result(None)
