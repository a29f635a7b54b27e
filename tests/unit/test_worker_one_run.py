"""One run at a time of a job id across a process's WORKER_CONCURRENCY slots: a second
delivery of a job still running on another slot waits, then finds the first run's manifest
and does not run the handler again; other jobs do not wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from shared.blobs import FolderBlobStore, output_key
from shared.messages import Job
from shared.worker.job_thread import JobTimeLimitExceeded, _raise_in
from shared.worker.one_run import held
from shared.worker.perform import run_handler_once

MAX_BYTES = 1 << 20


def test_a_second_delivery_waits_for_the_running_one_and_does_not_run_again(
    tmp_path: Path,
) -> None:
    blobs = FolderBlobStore(tmp_path)
    job = Job(type="mail")
    inside, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def sends(job: Job, blobs: Any) -> list[str]:
        runs.append(threading.current_thread().name)
        inside.set()
        release.wait(10)  # an SMTP conversation, say
        return [blobs.write_bytes(output_key(job.id, "report.json"), b"{}")]

    answers: dict[str, list[str]] = {}

    def slot(name: str) -> None:
        answers[name] = run_handler_once(job, sends, blobs, MAX_BYTES)

    first = threading.Thread(target=slot, args=("first",), name="slot-0")
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=slot, args=("second",), name="slot-1")
    second.start()
    time.sleep(0.3)  # the second delivery has had time to run the handler, were it let
    assert runs == ["slot-0"]
    release.set()
    first.join(5)
    second.join(5)
    assert runs == ["slot-0"], "the handler ran once"
    assert answers["first"] == answers["second"] == [output_key(job.id, "report.json")]
    assert held() == 0


def test_other_jobs_do_not_wait(tmp_path: Path) -> None:
    blobs = FolderBlobStore(tmp_path)
    inside, release = threading.Event(), threading.Event()

    def blocks(job: Job, blobs: Any) -> list[str]:
        inside.set()
        release.wait(10)
        return []

    slow = threading.Thread(
        target=run_handler_once, args=(Job(type="mail"), blocks, blobs, MAX_BYTES)
    )
    slow.start()
    try:
        assert inside.wait(5)
        assert run_handler_once(Job(type="mail"), lambda j, b: [], blobs, MAX_BYTES) == []
    finally:
        release.set()
        slow.join(5)
    assert held() == 0


def test_a_waiting_run_interrupted_by_its_time_limit_leaves_no_hold_behind(
    tmp_path: Path,
) -> None:
    """The time limit's exception can land in a run waiting for the job's earlier run: it
    leaves, the earlier run still ends and frees the job, and nothing stays held."""
    blobs = FolderBlobStore(tmp_path)
    job = Job(type="mail")
    inside, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def blocks(job: Job, blobs: Any) -> list[str]:
        inside.set()
        release.wait(10)
        return []

    def waiter() -> None:
        try:
            run_handler_once(job, blocks, blobs, MAX_BYTES)
            outcome.append("ran")
        except JobTimeLimitExceeded:
            outcome.append("interrupted")

    first = threading.Thread(target=run_handler_once, args=(job, blocks, blobs, MAX_BYTES))
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=waiter)
    second.start()
    time.sleep(0.2)  # waiting for the first
    assert second.ident is not None
    _raise_in(second.ident)
    second.join(5)
    assert outcome == ["interrupted"]
    release.set()
    first.join(5)
    assert held() == 0
    assert run_handler_once(job, blocks, blobs, MAX_BYTES) == []  # recalled, not waited for
