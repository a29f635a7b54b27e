"""One run at a time of a job id in this process, across its WORKER_CONCURRENCY slots.

The manifest and the mailer's send-once ledger stop a second run of a job that finished, not
one that is still running. With several slots, a job whose run is still going on one slot
can come again to another: its connection was lost mid-run (the broker took the delivery
back at once), or its time limit sent it to the back-off queue while its thread sat in a C
call. The second run waits here until the first has ended, and then finds what it recorded.
With one slot the redelivery queues behind the first run on the same job thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared.log import get_logger

log = get_logger("shared.worker")

_WAIT_STEP_S = 0.1  # short waits: a time limit's interruption lands between them

_guard = threading.Lock()
_runs: dict[str, tuple[threading.Lock, int]] = {}  # job id -> its lock, runs holding or waiting


@contextmanager
def one_run_of(job_id: str) -> Iterator[None]:
    """Hold `job_id` for this run; wait first while another run in this process holds it."""
    with _guard:
        lock, users = _runs.get(job_id, (threading.Lock(), 0))
        _runs[job_id] = (lock, users + 1)
    try:
        if not lock.acquire(blocking=False):
            log.warning("job_waits_for_its_earlier_run", detail="the same job runs on another slot")
            while not lock.acquire(timeout=_WAIT_STEP_S):
                pass
        try:
            yield
        finally:
            lock.release()
    finally:
        with _guard:
            lock, users = _runs[job_id]
            if users == 1:
                del _runs[job_id]
            else:
                _runs[job_id] = (lock, users - 1)


def held() -> int:
    """How many job ids are held or waited for (0 once every run has ended)."""
    with _guard:
        return len(_runs)
