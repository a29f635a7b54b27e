"""WORKER_CONCURRENCY: a worker process runs that many slots, each with its own job threads
and connection, and a slot that fails stops the others instead of leaving the process
running short of a slot. (The slots against the real broker: tests/integration/
test_worker_runner.py and test_job_time_limit.py.)"""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.blobs import FolderBlobStore
from shared.config import Settings
from shared.exit_codes import EXIT_ABORTED
from shared.messages import Job
from shared.worker import Worker
from shared.worker import runner as runner_module
from shared.worker.job_thread import JobThread, RunningJob
from shared.worker.runner import _Slot, _wait_out


def worker(tmp_path: Path, concurrency: int) -> Worker:
    settings = Settings(namespace="ns", blob_dir=tmp_path, worker_concurrency=concurrency)
    return Worker(
        settings,
        service="tester",
        handlers={"resize": lambda job, blobs: [], "render": lambda job, blobs: []},
        blobs=FolderBlobStore(tmp_path),
        instance="h:1",
    )


def test_each_slot_has_job_threads_and_a_connection_of_its_own(tmp_path: Path) -> None:
    w = worker(tmp_path, 3)
    assert [slot.index for slot in w.slots] == [0, 1, 2]
    threads = [b.job_thread for slot in w.slots for b in slot.bindings]
    assert len({id(t) for t in threads}) == 6  # 3 slots x 2 job types
    names = [w._connection_name(slot) for slot in w.slots]
    assert names == [f"ns.jobs.resize+render:h:1#{i}" for i in range(3)]
    one = worker(tmp_path, 1)
    assert one._connection_name(one.slots[0]) == "ns.jobs.resize+render:h:1"


def test_a_failing_slot_stops_the_others_and_ends_the_run(tmp_path: Path) -> None:
    w = worker(tmp_path, 2)
    stopped_seen = threading.Event()

    def run_slot(slot: _Slot) -> None:
        if slot.index == 1:
            raise RuntimeError("slot 1 broke")
        w._stopping.wait(5)  # slot 0 serves until asked to stop
        stopped_seen.set()

    w._run_slot = run_slot  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="slot 1 broke"):
        w.run()
    assert stopped_seen.is_set()


def test_a_first_signal_after_a_slot_failed_is_a_first_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed slot stops the others, which finish their jobs in hand; a SIGTERM meanwhile
    is the operator's first and waits for them too: only a second one exits at once."""
    exits: list[int] = []
    monkeypatch.setattr(runner_module.os, "_exit", exits.append)
    w = worker(tmp_path, 2)
    w.stop()  # as a failed slot does
    w._on_signal(signal.SIGTERM, None)
    assert exits == []
    w._on_signal(signal.SIGTERM, None)
    assert exits == [EXIT_ABORTED]


def spinning_on(job_thread: JobThread, limit_s: float) -> tuple[RunningJob, threading.Event]:
    """A job with no connection, spinning in Python on `job_thread` until interrupted; and
    the event it sets as it leaves."""
    left = threading.Event()

    def spins(running: RunningJob) -> None:
        try:
            while True:
                time.sleep(0.001)
        finally:
            left.set()

    running = RunningJob(Job(type="resize"), None, limit_s, contextvars.copy_context())  # type: ignore[arg-type]
    job_thread.start(running, spins)
    return running, left


def test_a_job_left_by_its_connection_at_the_stop_is_still_held_to_its_limit() -> None:
    """A stop during a reconnect: the job in hand has no connection to be settled on, and the
    slot waits for it to end. Past its limit it is interrupted, as while serving; the wait
    ended only with the job, however long it ran."""
    job_thread = JobThread("tester-resize")
    running, left = spinning_on(job_thread, limit_s=0.2)
    try:
        started = time.monotonic()
        _wait_out(job_thread, running)
        assert left.is_set() and running.done.is_set()
        assert time.monotonic() - started < 5
    finally:
        job_thread.close()


def test_a_job_in_hand_is_held_to_its_limit_while_its_slot_reconnects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker is down, the slot keeps trying to connect: no consumer watches the job in
    hand, so the reconnect's waits do. Past its limit it is interrupted; before, it ran on
    for as long as the broker stayed away, and a mailer's claim on a send could run out."""
    attempts: list[float] = []

    def broker_down(*_args: object, should_stop: Callable[[], bool], **_kw: object) -> None:
        while not should_stop():  # as connect() asks between its attempts
            attempts.append(time.monotonic())
            time.sleep(0.05)

    monkeypatch.setattr(runner_module, "connect", broker_down)
    w = worker(tmp_path, 1)
    (slot,) = w.slots
    running, left = spinning_on(slot.bindings[0].job_thread, limit_s=0.3)
    reconnecting = threading.Thread(target=w._run_slot, args=(slot,), daemon=True)
    reconnecting.start()
    try:
        assert left.wait(5), "the job ran on past its limit while its slot reconnected"
        assert running.timed_out and attempts
    finally:
        w.stop()
        reconnecting.join(10)
    assert not reconnecting.is_alive()
