"""The job time limit: a job thread still running after JOB_TIME_LIMIT is interrupted.

Python cannot kill a thread. The runner settles the job as timed out on its I/O thread, then
raises `JobTimeLimitExceeded` inside the job thread at its next bytecode; a thread stuck in
one long C call (nothing to interrupt) is ended with its process, which its supervisor starts
again, like Celery's hard time limit.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from shared.amqp import Delivery
from shared.messages import Job

# The process exit code of a worker whose job thread ignored its time limit (EX_SOFTWARE).
EXIT_JOB_STUCK = 70
# How long a timed-out thread gets to notice the interruption before the process ends.
MAX_STUCK_GRACE_S = 30.0


class JobTimeLimitExceeded(BaseException):
    """Raised inside a job thread over its limit; a BaseException so that a handler's
    `except Exception` cannot swallow it."""


@dataclass
class RunningJob:
    """The job in hand, shared by the I/O thread and its job thread."""

    job: Job
    delivery: Delivery
    limit_s: float
    started: float = field(default_factory=time.monotonic)
    thread_id: int | None = None
    future: Future[None] = field(default_factory=Future)
    # Set on the I/O thread once the limit has settled the job; the job thread's own
    # outcome, arriving later, is then discarded.
    timed_out: bool = False

    def over_limit(self, now: float) -> bool:
        return not self.timed_out and now - self.started > self.limit_s

    def stuck(self, now: float) -> bool:
        grace = min(MAX_STUCK_GRACE_S, self.limit_s)
        return self.timed_out and now - self.started > self.limit_s + grace


def start_job_thread(running: RunningJob, target: Callable[[], None], name: str) -> None:
    """Run `target` in a new thread whose end completes `running.future`.

    A fresh thread per job, not a pool: an interruption that arrives just as a job ends can
    only end that thread, never a pool's worker that later jobs would wait for."""

    def run() -> None:
        running.thread_id = threading.get_ident()
        try:
            target()
        except JobTimeLimitExceeded:
            pass  # arrived after the job's own code was done
        finally:
            running.future.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()


def interrupt(thread_id: int) -> bool:
    """Raise JobTimeLimitExceeded in the thread at its next bytecode (a C call in progress,
    such as an image resize, finishes first). False when the thread has already ended."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(JobTimeLimitExceeded)
    )
    return bool(done == 1)
