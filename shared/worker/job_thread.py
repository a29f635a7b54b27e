"""The job thread and the job time limit.

Jobs of one type run one after another on a thread of their own, so the connection's thread
keeps pumping (heartbeats, confirms) however long a job takes. A job still running after
JOB_TIME_LIMIT is interrupted: Python cannot kill a thread, so `JobTimeLimitExceeded` is
raised inside it at its next bytecode (a C call in progress, such as an image resize, ends
first). A thread stuck in one long C call is ended with its process (exit 70), which its
supervisor starts again, like Celery's hard time limit.

An interrupted thread retires: it ends once the interrupted job has let go, and a new thread
takes the next job, so an interruption that arrives late (the job ended just before it) can
only end a thread that takes no more jobs, never hit a later job.
"""

from __future__ import annotations

import contextvars
import ctypes
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.amqp import Delivery
from shared.log import get_logger
from shared.messages import Job
from shared.worker.bridge import HandOver

log = get_logger("shared.worker")
# How long a timed-out thread gets to notice the interruption before the process ends.
MAX_STUCK_GRACE_S = 30.0


def longest_run_s(limit_s: float) -> float:
    """How long after its start a job's code can still be running under the time limit
    `limit_s`: past it the job was interrupted, or its process ended (`stuck`)."""
    return limit_s + min(MAX_STUCK_GRACE_S, limit_s)


class JobTimeLimitExceeded(BaseException):
    """Raised inside a job thread over its limit; a BaseException so that a handler's
    `except Exception` cannot swallow it."""


@dataclass
class RunningJob:
    """The job in hand, shared by the I/O thread and the job thread."""

    job: Job
    delivery: Delivery
    limit_s: float
    # The job's log context (job_id, type, attempt bound): the job thread runs in it, and
    # calls it makes on the I/O thread run in a copy of it.
    context: contextvars.Context
    # Reset when the job thread starts the job; until then the clock runs from acceptance,
    # so a job kept waiting behind a stuck one is not waited for forever.
    started: float = field(default_factory=time.monotonic)
    thread_id: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # Set on the I/O thread once the limit has settled the job; the job thread's own
    # outcome, arriving later, is then discarded (and a job not started yet never runs).
    timed_out: bool = False
    # Set on the I/O thread when the job thread's own outcome is being settled: from then on
    # the limit has nothing left to settle.
    settling: bool = False
    # Where the I/O thread that handed the job over waits a moment for its settling.
    hand_over: HandOver = field(default_factory=HandOver)

    def over_limit(self, now: float) -> bool:
        if self.timed_out or self.settling or self.done.is_set():
            return False
        return now - self.started > self.limit_s

    def stuck(self, now: float) -> bool:
        """Timed out, interrupted, and still not let go within the grace."""
        return self.timed_out and now - self.started > longest_run_s(self.limit_s)


Work = Callable[[RunningJob], None]


class JobThread:
    """Runs one worker's jobs of one type, one at a time, on a long-lived thread; replaces
    the thread after a time-limit interruption. It outlives connections, so one job of the
    type at a time holds across reconnects too. Called from the I/O thread only; no job may
    start while an interrupted thread lives (the consumer takes none meanwhile)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: _Thread | None = None
        self._retiring: _Thread | None = None
        self._interrupted: RunningJob | None = None
        self.in_hand: RunningJob | None = None

    def start(self, running: RunningJob, work: Work) -> None:
        """Run `work(running)` on the thread, once the job before it has ended."""
        assert self.interrupted is None, "a job started beside an interrupted one"
        self.in_hand = running
        if self._thread is None:
            self._thread = _Thread(self._name)
        self._thread.put(running, work)

    @property
    def interrupted(self) -> RunningJob | None:
        """The job interrupted for its time limit, while its thread has not ended."""
        if self._retiring is not None and not self._retiring.is_alive():
            self._retiring, self._interrupted = None, None
        return self._interrupted

    def interrupt(self, running: RunningJob) -> None:
        """Raise JobTimeLimitExceeded in the thread running `running` (if it has started and
        not ended) and retire that thread: the next job gets a new one."""
        if self._thread is None or running.thread_id is None or running.done.is_set():
            return
        self._retiring, self._thread = self._thread, None
        self._interrupted = running
        self._retiring.retire()
        _raise_in(running.thread_id)

    def close(self) -> None:
        """Let the thread end after the job in hand."""
        if self._thread is not None:
            self._thread.retire()
            self._thread = None


class _Thread(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._inbox: queue.SimpleQueue[tuple[RunningJob, Work] | None] = queue.SimpleQueue()
        self._retired = False
        self.start()

    def put(self, running: RunningJob, work: Work) -> None:
        self._inbox.put((running, work))

    def retire(self) -> None:
        """End after the jobs handed over so far."""
        self._retired = True
        self._inbox.put(None)

    def run(self) -> None:
        running: RunningJob | None = None
        while True:
            try:
                handed = self._inbox.get()
                if handed is None:
                    return
                running, work = handed
                running.thread_id = threading.get_ident()
                running.started = time.monotonic()
                try:
                    running.context.run(work, running)
                finally:
                    if not running.hand_over.handed:  # else the I/O thread that took it ends it
                        running.done.set()
            except Exception:
                # The last net: a job's course hands its own failures to the I/O loop
                # (perform.JobCourse), which drops the connection; this thread goes on.
                log.exception("job_thread_error")
            except JobTimeLimitExceeded:
                # It came after the job's own code was done (perform() catches it while the
                # job runs), maybe after the None that ends the thread was taken.
                if running is not None:
                    running.done.set()
                if self._retired:
                    return


def _raise_in(thread_id: int) -> bool:
    """Raise JobTimeLimitExceeded in the thread at its next bytecode. False when the thread
    has already ended."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(JobTimeLimitExceeded)
    )
    return bool(done == 1)
