"""The consumer and its job thread against a stub channel and a stand-in I/O thread: jobs run
off the I/O thread one at a time, are settled only after their events, and a job over its
time limit is settled, interrupted and followed by a new thread. Milliseconds each; the same
guarantees are proven against the real broker in tests/integration/test_worker_runner.py and
tests/integration/test_job_time_limit.py."""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.blobs import FolderBlobStore, output_key
from shared.config import Settings
from shared.errors import BrokerUnavailable, PermanentJobError, TransientJobError
from shared.events import EventSource
from shared.log import configure_logging
from shared.messages import FollowUp, Job
from shared.topology import Names
from shared.worker import consumer as consumer_module
from shared.worker.bridge import IoBridge
from shared.worker.consumer import Binding, Consumer
from shared.worker.job_thread import JobThread, RunningJob, _raise_in
from shared.worker.perform import Handler, JobCourse
from shared.worker.settle import Settler
from tests.support.stub_channel import IoThread, StubChannel

LIMIT_S = 5


class Rig:
    """One consumer of `resize` jobs wired to a stub channel, with a clock the test moves."""

    def __init__(self, tmp_path: Path, handler: Handler) -> None:
        self.channel = StubChannel()
        self.io = IoThread()
        self.skew = 0.0
        settings = Settings(
            namespace="ns", blob_dir=tmp_path, retry_delays_ms=(100,), job_time_limit=LIMIT_S
        )
        settler = Settler(self.channel, Names("ns"), EventSource("tester", "h:1"), settings)
        self.bridge = IoBridge(self.io)
        course = JobCourse(handler, FolderBlobStore(tmp_path), self.bridge, settler)
        self.job_thread = JobThread("tester-resize")
        self.consumer = Consumer(
            Binding("resize", handler, self.job_thread),
            settings=settings,
            channel=self.channel,  # type: ignore[arg-type]
            course=course,
            service="tester",
            clock=lambda: time.monotonic() + self.skew,
        )
        self.consumer.subscribe()

    def deliver(self, job: Job) -> None:
        self.channel.deliver(job)

    def settle_until(self, done: Callable[[], bool], timeout: float = 5) -> None:
        """Play the I/O loop: watch the time limit until `done()`."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out; calls: {self.channel.calls}"
            self.consumer.watch_time_limit()
            time.sleep(0.002)

    def settled(self, count: int) -> Callable[[], bool]:
        return lambda: len(self.channel.settled()) >= count


def rig_for(rigs: list[Rig], tmp_path: Path, handler: Handler) -> Rig:
    rigs.append(Rig(tmp_path, handler))
    return rigs[-1]


def writes_output(job: Job, blobs: Any) -> list[str]:
    thread_name = threading.current_thread().name
    return [blobs.write_bytes(output_key(job.id, "a.txt"), thread_name.encode())]


def test_a_job_runs_off_the_io_thread_and_is_acked_after_its_events(
    rigs: list[Rig], tmp_path: Path
) -> None:
    rig = rig_for(rigs, tmp_path, writes_output)
    job = Job(type="resize")
    rig.deliver(job)
    rig.settle_until(rig.settled(1))
    assert rig.channel.prefetch == 1
    assert rig.channel.calls == [
        ("consume", "ns.jobs.resize"),
        ("publish", "job.started"),
        ("publish", "job.succeeded"),
        ("confirm",),
        ("ack", 1),
    ]
    assert (tmp_path / "outputs" / job.id / "a.txt").read_text() == "tester-resize"


def test_jobs_of_one_type_run_one_after_another_on_the_same_thread(
    rigs: list[Rig], tmp_path: Path
) -> None:
    spans: list[tuple[float, float, int]] = []

    def slow(job: Job, blobs: Any) -> list[str]:
        start = time.monotonic()
        time.sleep(0.05)
        spans.append((start, time.monotonic(), threading.get_ident()))
        return []

    rig = rig_for(rigs, tmp_path, slow)
    rig.deliver(Job(type="resize"))
    rig.deliver(Job(type="resize"))  # as after a reconnect: the first is still running
    rig.settle_until(rig.settled(2))
    (_, first_end, first_thread), (second_start, _, second_thread) = spans
    assert second_start >= first_end
    assert first_thread == second_thread != threading.get_ident()


def test_a_job_whose_outcome_and_retry_are_both_refused_goes_back_with_the_connection(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """As after a broker node died: the broker nacks the job's outcome (here its follow-up),
    then the retry that stands in for it. Held unsettled on a connection that stays up, the
    job would stop the consumer for good (prefetch 1); the I/O loop is told to reconnect
    instead, and the broker takes it back."""
    rig = rig_for(rigs, tmp_path, writes_output)
    rig.channel.refuse = {"resize"}  # the follow-up (a resize), then the retry's copy
    rig.deliver(Job(type="resize", then=FollowUp(type="resize", params={"width": 80})))
    rig.settle_until(lambda: rig.bridge.failure is not None)
    assert "refused the job's outcome and then its retry" in str(rig.bridge.failure)
    assert not rig.channel.settled(), "neither acked nor rejected: the broker redelivers it"
    rig.settle_until(lambda: not rig.consumer.busy)  # the job thread is free for the next


def test_a_bug_in_a_jobs_course_sends_the_job_back_with_the_connection(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """Not the handler's error but the course's own (here its settling): the delivery is
    unsettled, and held so on a connection that stays up it would stop the consumer for good
    (prefetch 1); the I/O loop is told to reconnect, and the broker takes it back."""
    rig = rig_for(rigs, tmp_path, writes_output)

    def broken_settling(*args: Any) -> str:
        raise RuntimeError("a bug in settling")

    rig.consumer.course.settler.succeed = broken_settling  # type: ignore[method-assign]
    rig.deliver(Job(type="resize"))
    rig.settle_until(lambda: rig.bridge.failure is not None)
    assert "a job's course failed (RuntimeError: a bug in settling)" in str(rig.bridge.failure)
    assert not rig.channel.settled(), "neither acked nor rejected: the broker redelivers it"
    rig.settle_until(lambda: not rig.consumer.busy)  # the job thread is free for the next


def test_a_permanent_error_is_reported_then_rejected(rigs: list[Rig], tmp_path: Path) -> None:
    def bad(job: Job, blobs: Any) -> list[str]:
        raise PermanentJobError("width: bad", kind="invalid_params")

    rig = rig_for(rigs, tmp_path, bad)
    rig.deliver(Job(type="resize"))
    rig.settle_until(rig.settled(1))
    assert rig.channel.calls[-3:] == [("publish", "job.failed"), ("confirm",), ("reject", 1)]


def test_a_delivery_past_its_limit_is_refused_without_running(
    rigs: list[Rig], tmp_path: Path
) -> None:
    ran: list[str] = []
    rig = rig_for(rigs, tmp_path, lambda job, blobs: ran.append(job.id) or [])
    rig.channel.deliver(Job(type="resize"), delivery_count=5)
    assert rig.channel.calls[1:] == [("publish", "job.failed"), ("confirm",), ("reject", 1)]
    assert ran == []


def test_a_refused_delivery_whose_job_failed_is_refused_is_dead_lettered_all_the_same(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """Its job.failed refused, and again when sent once more: the delivery is rejected all
    the same (audit.dead records the dead letter), the connection kept."""
    rig = rig_for(rigs, tmp_path, lambda job, blobs: [])
    rig.channel.refuse = {"job.failed"}
    rig.channel.deliver(Job(type="resize"), delivery_count=5)
    assert rig.channel.settled() == [("reject", 1)]
    assert rig.channel.events() == ["job.failed", "job.failed"]
    assert rig.bridge.failure is None


def test_a_job_over_its_time_limit_is_retried_interrupted_and_the_next_gets_a_new_thread(
    rigs: list[Rig], tmp_path: Path
) -> None:
    seen: list[tuple[str, threading.Thread]] = []
    release = threading.Event()

    def spins(job: Job, blobs: Any) -> list[str]:
        seen.append(("started", threading.current_thread()))
        try:
            while job.params.get("spin") and not release.is_set():
                time.sleep(0.001)  # Python-level work: interruptible between calls
        finally:
            seen.append(("left", threading.current_thread()))
        return []

    rig = rig_for(rigs, tmp_path, spins)
    rig.deliver(Job(type="resize", params={"spin": True}))
    rig.settle_until(lambda: len(seen) == 1)
    rig.skew = LIMIT_S + 1  # the job has now run past its limit
    rig.settle_until(rig.settled(1))
    rig.settle_until(lambda: len(seen) == 2)
    assert rig.channel.calls[1:] == [
        ("publish", "job.started"),
        ("cancel",),  # no other job while the interrupted thread lives
        ("publish", "job.retrying"),
        ("confirm",),
        ("publish", "resize"),  # to the back-off queue, attempt 2, alone
        ("confirm",),
        ("ack", 1),
    ]
    rig.settle_until(lambda: rig.channel.consuming)  # its thread ended: consuming again
    assert not release.is_set()  # it left by the interruption, not by finishing

    rig.skew = 0
    rig.deliver(Job(type="resize"))
    rig.settle_until(rig.settled(2))
    (_, old_thread), _, (_, new_thread), _ = seen
    assert new_thread is not old_thread and not old_thread.is_alive()
    assert rig.channel.events().count("job.succeeded") == 1


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The exit codes the consumer ended the process with (it does not, here)."""
    codes: list[int] = []
    monkeypatch.setattr(consumer_module.os, "_exit", codes.append)
    return codes


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets a blocked handler (below) return at last."""
    event = threading.Event()
    yield event
    event.set()


def timed_out_in_a_c_call(rigs: list[Rig], tmp_path: Path, release: threading.Event) -> Rig:
    """A rig whose job sits in one C call past its limit: settled, interrupted, not ended."""
    running = threading.Event()

    def blocks(job: Job, blobs: Any) -> list[str]:
        running.set()
        release.wait(10)  # one C call: the interruption waits for it to return
        return []

    rig = rig_for(rigs, tmp_path, blocks)
    rig.deliver(Job(type="resize"))
    rig.settle_until(running.is_set)
    rig.skew = LIMIT_S + 1
    rig.settle_until(rig.settled(1))
    return rig


def test_a_thread_that_ignores_its_interruption_ends_the_process(
    rigs: list[Rig], tmp_path: Path, exits: list[int], release: threading.Event
) -> None:
    rig = timed_out_in_a_c_call(rigs, tmp_path, release)
    assert exits == []
    rig.skew = LIMIT_S + LIMIT_S + 1  # past the limit and the grace after it
    rig.consumer.watch_time_limit()
    assert exits == [70]


@pytest.mark.usefixtures("restore_logging")
def test_what_the_io_thread_logs_for_a_job_carries_the_job_id(
    rigs: list[Rig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("tester", "info", "json")

    def fails(job: Job, blobs: Any) -> list[str]:
        if job.params.get("permanent"):
            raise PermanentJobError("no good", kind="scripted")
        raise TransientJobError("try later")

    rig = rig_for(rigs, tmp_path, fails)
    retried, failed = Job(type="resize"), Job(type="resize", params={"permanent": True})
    rig.deliver(retried)
    rig.settle_until(rig.settled(1))
    rig.deliver(failed)
    rig.settle_until(rig.settled(2))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["job_retrying"]["job_id"] == retried.id
    assert by_event["job_failed"]["job_id"] == failed.id
    assert by_event["job_failed"]["service"] == "tester"


def test_after_an_interruption_a_new_connection_takes_no_job_until_the_thread_has_ended(
    rigs: list[Rig], tmp_path: Path, exits: list[int], release: threading.Event
) -> None:
    rig = timed_out_in_a_c_call(rigs, tmp_path, release)
    # The connection is lost; the next one's consumer shares the job thread.
    reconnected, again = reconnected_consumer(rig)
    reconnected.subscribe()
    assert not again.consuming and reconnected.paused
    rig.skew = LIMIT_S + LIMIT_S + 1  # the interrupted thread is stuck past its grace
    reconnected.watch_time_limit()
    assert exits == [70]
    release.set()
    deadline = time.monotonic() + 5
    while not again.consuming:  # its thread has ended: the new connection takes jobs
        assert time.monotonic() < deadline
        reconnected.watch_time_limit()
        time.sleep(0.002)


def reconnected_consumer(rig: Rig) -> tuple[Consumer, StubChannel]:
    """The next connection's consumer of the rig's type: it shares the job thread."""
    again = StubChannel()
    consumer = Consumer(
        rig.consumer.binding,
        settings=rig.consumer.settings,
        channel=again,  # type: ignore[arg-type]
        course=rig.consumer.course,
        service="tester",
        clock=lambda: time.monotonic() + rig.skew,
    )
    return consumer, again


def test_a_new_connection_takes_no_job_while_the_last_ones_job_runs_and_holds_it_to_its_limit(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """The connection is lost mid-job (the broker takes the delivery back) and the next one
    comes up while the job still runs. A job taken now would wait behind it, and the limit
    would be watched on the waiting job instead of the running one."""
    rig, left = spinning_job(rigs, tmp_path)
    reconnected, again = reconnected_consumer(rig)
    with capture_logs() as logs:
        reconnected.subscribe()
        assert not again.consuming and reconnected.paused
        reconnected.watch_time_limit()
        assert not again.consuming  # within its limit: still running, still no job taken
        rig.skew = LIMIT_S + 1
        deadline = time.monotonic() + 5
        while not again.consuming:  # interrupted, ended: now the new connection takes jobs
            assert time.monotonic() < deadline
            reconnected.watch_time_limit()
            time.sleep(0.002)
    assert left.is_set()
    assert again.settled() == [] and rig.channel.settled() == []  # its delivery went back
    events = [e["event"] for e in logs]
    assert events[0] == "waiting_for_the_last_connections_job"
    assert "job_time_limit_exceeded" in events and events[-1] == "consuming"


def test_a_job_settled_by_its_limit_while_it_waited_never_runs(
    rigs: list[Rig], tmp_path: Path
) -> None:
    ran: list[str] = []
    release = threading.Event()

    def records(job: Job, blobs: Any) -> list[str]:
        ran.append(job.id)
        release.wait(10)
        return []

    rig = rig_for(rigs, tmp_path, records)
    first, waiting = Job(type="resize"), Job(type="resize")
    rig.deliver(first)
    rig.settle_until(lambda: ran == [first.id])
    rig.deliver(waiting)  # as after a reconnect: queued behind the first, on the same thread
    rig.skew = LIMIT_S + 1
    rig.consumer.watch_time_limit()  # the waiting job is over its limit: retried, not run
    release.set()
    rig.skew = 0
    rig.settle_until(rig.settled(2))
    rig.settle_until(
        lambda: rig.job_thread.in_hand is not None and rig.job_thread.in_hand.done.is_set()
    )
    assert ran == [first.id]
    assert "job.retrying" in rig.channel.events()


def test_a_late_interruption_ends_a_retired_thread_instead_of_hanging_it() -> None:
    job_thread = JobThread("tester-resize")
    context = contextvars.copy_context()
    running = RunningJob(Job(type="resize"), None, 5, context)  # type: ignore[arg-type]
    job_thread.start(running, lambda r: None)
    assert running.done.wait(5)
    job_thread.interrupt(running)  # the job ended first: nothing to interrupt
    assert job_thread.interrupted is None
    thread = job_thread._thread
    assert thread is not None
    thread.retire()
    _raise_in(thread.ident or 0)  # as if the interruption had landed just after the job
    thread.join(5)
    assert not thread.is_alive()


def test_a_job_being_settled_is_not_over_its_limit() -> None:
    context = contextvars.copy_context()
    running = RunningJob(Job(type="resize"), None, 5, context)  # type: ignore[arg-type]
    later = time.monotonic() + 60
    assert running.over_limit(later)
    running.settling = True
    assert not running.over_limit(later)


def spinning_job(rigs: list[Rig], tmp_path: Path) -> tuple[Rig, threading.Event]:
    """A rig whose job spins in Python until its interruption, running; and the event its
    handler sets as it leaves."""
    left = threading.Event()

    def spins(job: Job, blobs: Any) -> list[str]:
        try:
            while True:
                time.sleep(0.001)  # Python-level work: interruptible between calls
        finally:
            left.set()

    rig = rig_for(rigs, tmp_path, spins)
    rig.deliver(Job(type="resize"))
    rig.settle_until(lambda: rig.consumer.busy)
    time.sleep(0.05)
    return rig, left


@pytest.mark.parametrize(
    ("refused", "why"),
    [
        ("resize", "refused the job's outcome and then its retry"),  # the copy
        ("job.retrying", "refused the job's events twice"),
    ],
)
def test_a_time_limit_retry_the_broker_refuses_drops_the_connection_and_still_interrupts(
    rigs: list[Rig], tmp_path: Path, refused: str, why: str
) -> None:
    """The broker nacks the retry of a job over its limit (a queue electing a new leader):
    the connection is dropped, so the broker takes the job back, and the job's thread is
    interrupted all the same. Before, the nack ended the worker process."""
    rig, left = spinning_job(rigs, tmp_path)
    rig.channel.refuse = {refused}
    rig.skew = LIMIT_S + 1
    with pytest.raises(BrokerUnavailable, match=why):
        rig.settle_until(lambda: False)
    assert left.wait(5), "the thread was interrupted"
    assert not rig.channel.settled(), "neither acked nor rejected: the broker redelivers it"


def test_a_job_over_its_limit_is_interrupted_while_a_broker_alarm_holds_its_retry(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """A memory or disk alarm blocks the connection: the retry of a job over its limit waits
    for confirms as long as the alarm lasts. The job is interrupted all the same, at its
    limit, not once the alarm is over (a mailer would go on sending past its claim)."""
    rig, left = spinning_job(rigs, tmp_path)
    rig.channel.confirms_flow.clear()  # the alarm
    rig.skew = LIMIT_S + 1
    io_thread = threading.Thread(target=rig.consumer.watch_time_limit, daemon=True)
    io_thread.start()
    try:
        assert left.wait(5), "interrupted while the retry waits for its confirms"
        assert io_thread.is_alive() and not rig.channel.settled()
    finally:
        rig.channel.confirms_flow.set()  # the alarm is over
    io_thread.join(5)
    assert rig.channel.events() == ["job.started", "job.retrying"]
    assert rig.channel.settled() == [("ack", 1)]


@pytest.mark.parametrize("refused", ["job.retrying", "job.started"])
def test_a_refused_event_of_a_retry_leaves_one_copy_in_the_back_off_queue(
    rigs: list[Rig], tmp_path: Path, refused: str
) -> None:
    """The broker refuses `job.retrying`, or the `job.started` still unconfirmed before it
    (an event queue electing a leader), once: the event goes again, and the job goes to the
    back-off queue once."""

    def fails(job: Job, blobs: Any) -> list[str]:
        raise TransientJobError("smtp down")

    rig = rig_for(rigs, tmp_path, fails)
    rig.channel.refuse_once.add(refused)
    rig.deliver(Job(type="resize"))
    rig.settle_until(rig.settled(1))
    copies = [p for p in rig.channel.published if p.message_type == "resize"]
    assert len(copies) == 1 and copies[0].job.attempt == 2
    assert rig.channel.settled() == [("ack", 1)]


def test_a_retry_whose_event_is_refused_for_good_sends_no_copy_before_it_drops(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """`job.retrying` refused again and again: the connection drops and the broker takes the
    job back, with no copy in the back-off queue. Sent with the event, the copy was
    confirmed all the same, and the job's redelivery made a second one: two runs."""

    def fails(job: Job, blobs: Any) -> list[str]:
        raise TransientJobError("smtp down")

    rig = rig_for(rigs, tmp_path, fails)
    rig.channel.refuse = {"job.retrying"}
    rig.deliver(Job(type="resize"))
    rig.settle_until(lambda: rig.bridge.failure is not None)
    assert [p for p in rig.channel.published if p.message_type == "resize"] == []
    assert not rig.channel.settled(), "neither acked nor rejected: the broker redelivers it"


def test_a_handler_raising_system_exit_is_a_crash_retried_and_the_next_job_runs(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """A library's sys.exit in a handler: that job is retried as a crash; let through, it
    ended the job's thread and left the delivery unsettled, the consumer stopped for good."""

    def exits(job: Job, blobs: Any) -> list[str]:
        if job.params.get("exit"):
            raise SystemExit(3)
        return []

    rig = rig_for(rigs, tmp_path, exits)
    rig.deliver(Job(type="resize", params={"exit": True}))
    rig.settle_until(rig.settled(1))
    assert "job.retrying" in rig.channel.events()
    rig.deliver(Job(type="resize"))
    rig.settle_until(rig.settled(2))
    assert rig.channel.events().count("job.succeeded") == 1


def test_a_consumer_stopped_for_good_stays_stopped_after_its_time_limit_pause(
    rigs: list[Rig], tmp_path: Path
) -> None:
    """SIGTERM while a job over its limit is being interrupted: once its thread has ended,
    the consumer does not take jobs again (it did, and the drain could run past its grace)."""
    rig, _ = spinning_job(rigs, tmp_path)
    rig.skew = LIMIT_S + 1
    rig.settle_until(rig.settled(1))
    assert rig.consumer.paused
    rig.consumer.stop_taking(for_good=True)  # the worker's drain
    rig.settle_until(lambda: rig.job_thread.interrupted is None or not rig.consumer.busy)
    for _ in range(50):
        rig.consumer.watch_time_limit()
        time.sleep(0.002)
    assert not rig.channel.consuming


def test_a_connection_lost_as_a_job_over_its_limit_is_paused_still_interrupts_it(
    rigs: list[Rig], tmp_path: Path
) -> None:
    rig, left = spinning_job(rigs, tmp_path)

    def cancel_fails() -> None:
        raise BrokerUnavailable("basic.cancel: connection reset")

    rig.consumer.stop_taking = cancel_fails  # type: ignore[method-assign, assignment]
    rig.skew = LIMIT_S + 1
    with pytest.raises(BrokerUnavailable, match="connection reset"):
        rig.consumer.watch_time_limit()
    assert left.wait(5), "the thread was interrupted all the same"
