"""One run at a time of a job id in this process, across its WORKER_CONCURRENCY slots.

The manifest and the mailer's send-once ledger stop a second run of a job that finished, not
one that is still running. With several slots, a job whose run is still going on one slot
can come again to another: its connection was lost mid-run (the broker took the delivery
back at once), or its time limit sent it to the back-off queue while its thread sat in a C
call. The second run waits here until the first has ended, and then finds what it recorded.
With one slot the redelivery queues behind the first run on the same job thread.

A job thread can be interrupted anywhere (its time limit's exception), so a run's hold is
the thread's id in the job's entry, set and cleared under one condition, never a lock that
an exception landing between its acquire and the `try` would leave held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from shared.log import get_logger

log = get_logger("shared.worker")

_WAIT_STEP_S = 0.1  # short waits: a time limit's interruption lands between them


@dataclass
class _Entry:
    holder: int | None = None  # the thread running the job
    users: int = 0  # runs holding or waiting


_changed = threading.Condition()
_runs: dict[str, _Entry] = {}  # job id -> its entry, while any run holds or waits for it


@contextmanager
def one_run_of(job_id: str) -> Iterator[None]:
    """Hold `job_id` for this run; wait first while another run in this process holds it."""
    me = threading.get_ident()
    entry: _Entry | None = None
    try:
        with _changed:
            entry = _runs.setdefault(job_id, _Entry())
            entry.users += 1
            if entry.holder is not None:
                log.warning("job_waits_for_its_earlier_run", detail="it runs on another slot")
            while entry.holder is not None:
                _changed.wait(_WAIT_STEP_S)
            entry.holder = me
        yield
    finally:
        with _changed:
            if entry is not None:
                if entry.holder == me:
                    entry.holder = None
                    _changed.notify_all()
                entry.users -= 1
                if entry.users == 0:
                    del _runs[job_id]


def held() -> int:
    """How many job ids are held or waited for (0 once every run has ended)."""
    with _changed:
        return len(_runs)
