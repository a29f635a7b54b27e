"""JOB_TIME_LIMIT: a job over it is settled as a passing fault (job.retrying, then dead letters
after the last back-off step) and interrupted; the worker goes on with the next job. A job
thread that cannot be interrupted ends its process, which its supervisor starts again."""

from __future__ import annotations

import signal

import pytest

from shared.exit_codes import EXIT_JOB_STUCK
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.processes import ServiceProcess
from tests.support.scripted_worker import MODULE as WORKER
from tests.support.scripted_worker import scripted_job as job


def start_worker(spawn: SpawnFn) -> ServiceProcess:
    worker = spawn(WORKER, JOB_TIME_LIMIT="1")
    worker.wait_logged("consuming")
    return worker


@pytest.fixture
def worker(spawn: SpawnFn) -> ServiceProcess:
    return start_worker(spawn)


def test_a_job_over_its_limit_is_retried_then_dead_and_the_worker_goes_on(
    worker: ServiceProcess, broker: TestBroker
) -> None:
    events = broker.events()
    slow, quick = job(busy=30), job()

    broker.publish_job(slow)
    broker.publish_job(quick)

    retrying = events.wait_for(slow.id, "job.retrying", timeout=10)[0]
    assert retrying["error"]["kind"] == "time_limit"
    events.wait_for(quick.id, "job.succeeded", timeout=15)
    # Every attempt times out; after the last back-off step the job is dead, with the reason.
    (failed,) = events.wait_for(slow.id, "job.failed", timeout=30)
    assert "JOB_TIME_LIMIT" in failed["error"]["message"]
    broker.wait_until(lambda: broker.depth(broker.names.dead_queue) == 1, 10, "a dead letter")
    assert not events.of(slow.id, "job.succeeded")
    # Interrupted, not left running: the same process took the next job.
    worker.wait_logged("job_interrupted_by_time_limit", count=3, timeout=10)
    assert worker.proc.poll() is None


def test_a_job_thread_that_cannot_be_interrupted_ends_its_process(
    worker: ServiceProcess, spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    stuck = job(sleep=60)  # one long C call: no bytecode to raise the interruption at

    broker.publish_job(stuck)

    retrying = events.wait_for(stuck.id, "job.retrying", timeout=10)[0]
    assert retrying["error"]["kind"] == "time_limit"
    assert worker.wait(timeout=15) == EXIT_JOB_STUCK
    assert worker.logged("job_thread_stuck_exiting")
    # Settled before the exit: the retry is queued, the job is not lost with the process.
    start_worker(spawn)
    assert events.wait_for(stuck.id, "job.started", count=2, timeout=15)


def test_under_respawn_a_stuck_worker_is_started_again_and_stops_cleanly_on_sigterm(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    """`make run` runs workers under shared.respawn: honcho would stop the whole suite when
    one exits 70. (A retry 30 s away keeps the stuck job from coming back during the test.)"""
    events = broker.events()
    supervised = spawn("shared.respawn", WORKER, JOB_TIME_LIMIT="1", RETRY_DELAYS_MS="30000")
    supervised.wait_logged("consuming")
    broker.publish_job(job(sleep=60))

    supervised.wait_logged("service_ended_restarting", timeout=20)
    assert supervised.logged("service_ended_restarting")[0]["exit_code"] == EXIT_JOB_STUCK
    supervised.wait_logged("consuming", count=2)
    after = job()
    broker.publish_job(after)
    events.wait_for(after.id, "job.succeeded")

    supervised.signal(signal.SIGTERM)
    assert supervised.wait(timeout=15) == 0
    assert supervised.logged("worker_stopped")


def test_with_worker_concurrency_a_job_over_its_limit_leaves_the_others_running(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    worker = spawn(WORKER, JOB_TIME_LIMIT="1", WORKER_CONCURRENCY="2", RETRY_DELAYS_MS="30000")
    worker.wait_logged("consuming", count=2)
    slow, steady = job(busy=30), job(busy=0.5)
    broker.publish_job(slow)
    events.wait_for(slow.id, "job.started")
    broker.publish_job(steady)

    retrying = events.wait_for(slow.id, "job.retrying", timeout=10)[0]
    assert retrying["error"]["kind"] == "time_limit"
    # The other slot's job, in hand while the slow one was interrupted, ran to its end.
    events.wait_for(steady.id, "job.succeeded", timeout=10)
    assert not events.of(steady.id, "job.retrying")
    worker.wait_logged("job_interrupted_by_time_limit", timeout=10)
    assert worker.proc.poll() is None
    # Both slots go on taking jobs in the same process.
    more = [job() for _ in range(4)]
    for j in more:
        broker.publish_job(j)
    events.wait_for_terminal([j.id for j in more], timeout=15)
    assert all(events.of(j.id, "job.succeeded") for j in more)
