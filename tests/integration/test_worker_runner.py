"""The worker runner's delivery guarantees, against the real RabbitMQ and real processes.

Each test runs `tests.support.scripted_worker` (the real runner, a handler scripted by the
job's params) in its own namespace.
"""

from __future__ import annotations

import collections
import os
import signal
import time

from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn, with_settings
from tests.support.broker import TestBroker, close_connections_named
from tests.support.processes import ServiceProcess
from tests.support.scripted_worker import MODULE as WORKER
from tests.support.scripted_worker import handler_runs
from tests.support.scripted_worker import scripted_job as job


def start_workers(spawn: SpawnFn, count: int = 1, **env: str) -> list[ServiceProcess]:
    workers = [spawn(WORKER, **env) for _ in range(count)]
    for w in workers:
        w.wait_logged("consuming")
    return workers


def instance_pid(event: dict) -> int:
    return int(event["instance"].rsplit(":", 1)[1])


def test_jobs_are_dispatched_round_robin_over_two_workers(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    start_workers(spawn, 2)
    jobs = [job(sleep=0.3) for _ in range(6)]
    for j in jobs:
        broker.publish_job(j)
    events.wait_for_terminal([j.id for j in jobs])

    by_instance = collections.Counter(
        e["instance"] for e in events.poll() if e["event"] == "job.succeeded"
    )
    assert len(by_instance) == 2, by_instance
    assert all(n >= 2 for n in by_instance.values()), by_instance


def test_slow_job_does_not_hold_back_the_other_worker(spawn: SpawnFn, broker: TestBroker) -> None:
    events = broker.events()
    start_workers(spawn, 2)
    slow = job(sleep=4)
    broker.publish_job(slow)
    slow_worker = events.wait_for(slow.id, "job.started")[0]["instance"]
    fast = [job(sleep=0.05) for _ in range(4)]
    for j in fast:
        broker.publish_job(j)
    events.wait_for_terminal([j.id for j in fast], timeout=20)

    # prefetch 1: nothing queues up behind the busy worker while the other one is free.
    assert not events.of(slow.id, "job.succeeded"), "the fast jobs waited for the slow one"
    fast_workers = {events.of(j.id, "job.succeeded")[0]["instance"] for j in fast}
    assert slow_worker not in fast_workers
    events.wait_for(slow.id, "job.succeeded", timeout=20)


def test_job_of_a_killed_worker_completes_on_the_other_worker(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    workers = start_workers(spawn, 2)
    j = job(sleep=3)
    broker.publish_job(j)
    started = events.wait_for(j.id, "job.started")[0]
    victim = next(w for w in workers if w.pid == instance_pid(started))
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()

    done = events.wait_for(j.id, "job.succeeded", timeout=30)[0]
    assert instance_pid(done) != victim.pid
    assert len(handler_runs(settings, j.id)) == 2
    assert broker.depth(broker.names.task_queue("resize")) == 0
    assert broker.depth(broker.names.dead_queue) == 0


def test_sigterm_finishes_and_acks_the_job_in_hand_then_exits_zero(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn)
    in_hand, queued = job(sleep=2), job(sleep=0)
    broker.publish_job(in_hand)
    events.wait_for(in_hand.id, "job.started")
    broker.publish_job(queued)
    worker.signal(signal.SIGTERM)

    assert worker.wait(timeout=20) == 0
    assert events.wait_for(in_hand.id, "job.succeeded")
    # It stopped taking jobs: the one queued behind stays in the queue for the next worker.
    assert not events.of(queued.id)
    task_queue = broker.names.task_queue("resize")
    broker.wait_until(lambda: broker.consumers(task_queue) == 0, 10, "the consumer to go")
    assert broker.depth(task_queue) == 1


def test_second_signal_exits_at_once_and_the_job_is_redelivered(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn)
    j = job(sleep=30)
    broker.publish_job(j)
    events.wait_for(j.id, "job.started")
    worker.signal(signal.SIGTERM)
    worker.wait_logged("shutdown_requested")
    t0 = time.monotonic()
    worker.signal(signal.SIGTERM)

    assert worker.wait(timeout=10) == 130
    assert time.monotonic() - t0 < 5
    task_queue = broker.names.task_queue("resize")
    broker.wait_until(lambda: broker.depth(task_queue) == 1, 10, "the job back in its queue")
    assert not events.of(j.id, "job.succeeded")


def test_worker_reconnects_after_the_broker_closes_its_connection(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn)
    # Long enough that two rabbitmqctl calls on a loaded machine still land mid-job.
    mid_job = job(sleep=5)
    broker.publish_job(mid_job)
    events.wait_for(mid_job.id, "job.started")

    assert close_connections_named(broker.names.task_queue("resize")) == 1
    worker.wait_logged("connection_lost")
    worker.wait_logged("consuming", count=2)

    # The job in hand is redelivered; its outputs were complete, so it is not run twice
    # and the tag from the dead connection is never acked on the new one.
    events.wait_for(mid_job.id, "job.succeeded", timeout=30)
    assert len(handler_runs(settings, mid_job.id)) == 1
    after = job()
    broker.publish_job(after)
    events.wait_for(after.id, "job.succeeded")
    assert worker.logged("job_already_done_skipping_handler")
    assert broker.depth(broker.names.dead_queue) == 0


def test_poison_messages_are_dead_lettered_once_and_the_worker_goes_on(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn)
    broker.publish_raw(b"\xff not json", message_id="garbage")
    broker.publish_raw(b'{"v": 1, "type": "resize"}', message_id="no-id")
    broker.publish_raw(b'{"v": 2, "id": "x", "type": "resize"}', message_id="bad-version")
    good = job()
    broker.publish_job(good)
    events.wait_for(good.id, "job.succeeded")
    time.sleep(1)  # room for a requeue loop to show itself, if there were one

    dead = broker.drain(broker.names.dead_queue)
    assert sorted(props.message_id for props, _ in dead) == ["bad-version", "garbage", "no-id"]
    assert len(worker.logged("undecodable_message_dead_lettered")) == 3
    assert worker.proc.poll() is None


def test_job_that_kills_its_worker_again_and_again_ends_in_dead_letters(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    poison = job(fail="crash")
    broker.publish_job(poison)
    # A supervisor restarting the crashed worker, as compose's restart policy would.
    for _ in range(settings.max_deliveries + 2):
        (worker,) = start_workers(spawn)
        while worker.proc.poll() is None and not worker.logged("delivery_limit_reached"):
            time.sleep(0.1)
        if worker.logged("delivery_limit_reached"):
            break
    else:
        raise AssertionError("the crashing job was never stopped")

    failed = events.wait_for(poison.id, "job.failed")[0]
    assert failed["error"]["kind"] == "delivery_limit"
    assert len(handler_runs(settings, poison.id)) == settings.max_deliveries
    # job.failed is confirmed before the reject, so the dead letter may land a moment later.
    broker.wait_until(lambda: broker.depth(broker.names.dead_queue) == 1, 5, "one dead letter")
    dead = broker.drain(broker.names.dead_queue)
    assert [props.message_id for props, _ in dead] == [poison.id]
    after = job()
    broker.publish_job(after)
    events.wait_for(after.id, "job.succeeded")


def test_transient_failure_is_retried_with_back_off_then_succeeds(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    start_workers(spawn)
    j = job(fail_until=3)
    broker.publish_job(j)
    done = events.wait_for(j.id, "job.succeeded")[0]

    retries = events.of(j.id, "job.retrying")
    assert [e["attempt"] for e in retries] == [1, 2]
    assert done["attempt"] == 3
    assert len(handler_runs(settings, j.id)) == 3
    assert broker.depth(broker.names.dead_queue) == 0


def test_transient_failure_dead_letters_after_the_last_back_off_step(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    start_workers(spawn)
    j = job(fail="transient")
    broker.publish_job(j)
    failed = events.wait_for(j.id, "job.failed")[0]

    assert failed["attempt"] == settings.max_attempts == 3
    assert "gave up after 3 attempts" in failed["error"]["message"]
    assert len(events.of(j.id, "job.retrying")) == 2
    broker.wait_until(lambda: broker.depth(broker.names.dead_queue) == 1, 5, "one dead letter")
    (props, _body) = broker.drain(broker.names.dead_queue)[0]
    assert props.message_id == j.id
    assert len(handler_runs(settings, j.id)) == 3


def test_unexpected_exception_is_retried_as_transient_with_its_traceback_logged(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn)
    j = job(fail="exception")
    broker.publish_job(j)
    retry = events.wait_for(j.id, "job.retrying")[0]

    assert retry["error"] == {
        "kind": "crash",
        "message": "RuntimeError: scripted unexpected exception",
    }
    crash = worker.logged("handler_crashed")[0]
    assert crash["job_id"] == j.id
    assert crash["exception"][0]["exc_type"] == "RuntimeError"


def test_permanent_failure_emits_job_failed_and_dead_letters_without_retry(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    start_workers(spawn)
    j = job(fail="permanent")
    broker.publish_job(j)
    failed = events.wait_for(j.id, "job.failed")[0]

    assert failed["error"] == {"kind": "scripted", "message": "scripted permanent failure"}
    assert failed["duration_ms"] >= 0
    assert not events.of(j.id, "job.retrying")
    broker.wait_until(lambda: broker.depth(broker.names.dead_queue) == 1, 5, "one dead letter")
    assert len(handler_runs(settings, j.id)) == 1


def test_redelivered_job_with_complete_outputs_is_not_run_again(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn)
    j = job()
    broker.publish_job(j)
    first = events.wait_for(j.id, "job.succeeded")[0]
    broker.publish_job(j)
    second = events.wait_for(j.id, "job.succeeded", count=2)[1]

    assert len(handler_runs(settings, j.id)) == 1
    assert first["outputs"] == second["outputs"] == [f"outputs/{j.id}/result.txt"]
    assert worker.logged("job_already_done_skipping_handler")


def test_a_done_job_at_its_delivery_limit_succeeds_instead_of_going_dead(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    """Outputs recorded, only the settling lost again and again (seen during a long broker
    alarm before workers waited it out): the job is done, not a crash loop."""
    events = broker.events()
    (worker,) = start_workers(spawn)
    j = job()
    broker.publish_job(j)
    events.wait_for(j.id, "job.succeeded")
    worker.stop()
    broker.publish_job(j)
    queue = broker.names.task_queue(j.type)
    for returned in range(settings.max_deliveries):
        method, props, _ = broker.channel.basic_get(queue, auto_ack=False)
        assert method is not None and props.message_id == j.id
        assert (props.headers or {}).get("x-delivery-count", 0) == returned
        broker.channel.basic_nack(method.delivery_tag, requeue=True)

    start_workers(spawn)
    events.wait_for(j.id, "job.succeeded", count=2)
    assert not events.of(j.id, "job.failed")
    assert broker.depth(broker.names.dead_queue) == 0
    assert len(handler_runs(settings, j.id)) == 1


def test_heartbeats_flow_during_a_job_longer_than_two_heartbeat_intervals(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn, AMQP_HEARTBEAT="1")
    j = job(sleep=5)
    broker.publish_job(j)
    events.wait_for(j.id, "job.succeeded", timeout=30)

    assert len(events.of(j.id, "job.started")) == 1
    assert not worker.logged("connection_lost")
    assert not worker.logged("job_abandoned_connection_lost")
    assert len(handler_runs(settings, j.id)) == 1


def test_job_started_is_out_while_a_long_job_runs_and_a_quick_ones_with_its_end(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    """`job.started` is held to go out with the job's end (one write, one confirm) only while
    the I/O thread waits for a quick job; a longer job's leaves as that thread goes back to
    its loop, long before the job ends."""
    events = broker.events()
    start_workers(spawn)
    quick, long = job(sleep=0), job(sleep=5)
    broker.publish_job(quick)
    broker.publish_job(long)
    events.wait_for(long.id, "job.started", timeout=4)
    assert not events.of(long.id, "job.succeeded")

    events.wait_for(long.id, "job.succeeded", timeout=10)
    assert [e["event"] for e in events.of(quick.id)] == ["job.started", "job.succeeded"]


def test_follow_up_job_is_published_with_the_outputs_as_inputs(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    start_workers(spawn)
    mail = {"to": ["ann@example.org"], "subject": "hi", "text": "x"}
    j = Job(type="resize", params={}, then={"type": "mail", "params": mail})
    broker.publish_job(j)
    events.wait_for(j.id, "job.succeeded")

    mail_queue = broker.names.task_queue("mail")
    broker.wait_until(lambda: broker.depth(mail_queue) == 1, 5, "the follow-up job")
    props, body = broker.drain(mail_queue)[0]
    follow = Job.model_validate_json(body)
    assert follow.parent_id == j.id and props.message_id == follow.id
    assert follow.inputs == [f"outputs/{j.id}/result.txt"]
    assert follow.params == mail
    submitted = events.of(follow.id, "job.submitted")
    assert submitted and submitted[0]["parent_id"] == j.id


def test_settings_with_a_different_namespace_do_not_see_these_jobs(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    other = with_settings(settings, namespace=settings.namespace + "-other")
    other_broker = TestBroker(other)
    other_broker.declare()
    try:
        events = broker.events()
        start_workers(spawn)
        j = job()
        other_broker.publish_job(j)
        time.sleep(1.5)
        assert not events.of(j.id)
        assert other_broker.depth(other_broker.names.task_queue("resize")) == 1
    finally:
        other_broker.close()


def test_worker_concurrency_runs_that_many_jobs_at_once_in_one_process(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn, WORKER_CONCURRENCY="4")
    # Each job waits until all four are in hand: one at a time, every one would fail.
    jobs = [job(together=4) for _ in range(4)]
    for j in jobs:
        broker.publish_job(j)
    events.wait_for_terminal([j.id for j in jobs], timeout=30)

    succeeded = [events.of(j.id, "job.succeeded") for j in jobs]
    assert all(succeeded), [events.of(j.id) for j in jobs]
    assert {instance_pid(s[0]) for s in succeeded} == {worker.pid}
    # Four consumers of the task queue, each with its own channel and prefetch 1.
    assert broker.consumers(broker.names.task_queue("resize")) == 4


def test_sigterm_finishes_every_job_in_hand_with_worker_concurrency(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    (worker,) = start_workers(spawn, WORKER_CONCURRENCY="3")
    in_hand = [job(sleep=2) for _ in range(3)]
    for j in in_hand:
        broker.publish_job(j)
    for j in in_hand:
        events.wait_for(j.id, "job.started")
    queued = job(sleep=0)
    broker.publish_job(queued)
    worker.signal(signal.SIGTERM)

    assert worker.wait(timeout=20) == 0
    for j in in_hand:
        assert events.wait_for(j.id, "job.succeeded")
    assert not events.of(queued.id)
    task_queue = broker.names.task_queue("resize")
    broker.wait_until(lambda: broker.consumers(task_queue) == 0, 10, "the consumers to go")
    assert broker.depth(task_queue) == 1
