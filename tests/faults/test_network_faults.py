"""Network faults between a worker and the broker (issue 7, item 6).

The scripted worker (the real runner) reaches RabbitMQ only through `TcpProxy`, with a short
heartbeat; the test publishes straight to the broker and watches the `job.*` events there.
Whatever the fault: no job is lost, and a job seen twice is a redelivery whose handler did
not run again (its output manifest absorbed it).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from shared.blobs import FolderBlobStore
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.broker import EventWatcher, TestBroker
from tests.support.processes import ServiceProcess
from tests.support.scripted_worker import MODULE as WORKER
from tests.support.scripted_worker import handler_runs, scripted_job
from tests.support.tcpproxy import TcpProxy

HEARTBEAT_S = 2
LATENCY_S = 2.0
# Long enough to be still in hand when the strike lands, on a loaded machine too.
IN_HAND_S = 3.0


def start_worker_behind(proxy: TcpProxy, spawn: SpawnFn, broker: TestBroker) -> ServiceProcess:
    worker = spawn(
        WORKER,
        AMQP_URL=proxy.url(broker.settings.amqp_url),
        AMQP_HEARTBEAT=str(HEARTBEAT_S),
    )
    worker.wait_logged("consuming")
    return worker


def publish_batch(broker: TestBroker, in_hand_s: float, more: int) -> tuple[Job, list[Job]]:
    """One job long enough to be in hand when the fault strikes, and `more` quick ones
    queued behind it; returns (the long one, all of them)."""
    in_hand = scripted_job(sleep=in_hand_s)
    jobs = [in_hand, *(scripted_job(sleep=0.1) for _ in range(more))]
    for job in jobs:
        broker.publish_job(job)
    return in_hand, jobs


def in_the_handler_with_job_started_out(
    worker: ServiceProcess, events: EventWatcher, in_hand: Job
) -> None:
    """Strike only once the job is in its handler and its job.started has reached the broker:
    the worker publishes job.started without waiting for its confirm (the ack waits for it),
    so a strike right after the handler began can take that event with it (seen in CI)."""
    worker.wait_logged("scripted_job_running")
    events.wait_for(in_hand.id, "job.started")


def wait_until_proxy_accepted(proxy: TcpProxy, count: int, broker: TestBroker) -> None:
    broker.wait_until(lambda: proxy.accepted >= count, 30, f"{count} connections to the proxy")


def strike_and_heal(
    proxy: TcpProxy,
    worker: ServiceProcess,
    broker: TestBroker,
    strike: Callable[[], None],
    notice_within: float,
) -> tuple[float, str]:
    """Break the path with `strike`, time how long the worker takes to notice, let its next
    connection attempt meet the broken path too, then heal it and wait until it consumes
    again; returns (seconds to notice, the connection_lost error it logged)."""
    strike()
    struck = time.monotonic()
    worker.wait_logged("connection_lost", timeout=notice_within)
    detected_s = time.monotonic() - struck
    wait_until_proxy_accepted(proxy, 2, broker)
    proxy.pass_through()
    worker.wait_logged("consuming", count=2, timeout=30)
    return detected_s, str(worker.logged("connection_lost")[0]["error"])


def assert_the_job_in_hand_came_back_once(
    events: EventWatcher, broker: TestBroker, worker: ServiceProcess, in_hand: Job, jobs: list[Job]
) -> None:
    """The job in hand was redelivered once; its outputs spared it a second run."""
    assert assert_no_job_lost_and_redeliveries_absorbed(events, broker, worker, jobs) == 1
    assert len(events.of(in_hand.id, "job.started")) == 2
    assert worker.logged("job_already_done_skipping_handler")


def assert_no_job_lost_and_redeliveries_absorbed(
    events: EventWatcher, broker: TestBroker, worker: ServiceProcess, jobs: list[Job]
) -> int:
    """Every job succeeded with its outputs, its handler ran once, and each extra delivery
    is one the broker took back from a lost connection; returns how many there were."""
    events.wait_for_terminal([j.id for j in jobs], timeout=60)
    seen = events.poll()
    started = collections.Counter(e["job_id"] for e in seen if e["event"] == "job.started")
    succeeded = collections.Counter(e["job_id"] for e in seen if e["event"] == "job.succeeded")
    blobs = FolderBlobStore(broker.settings.blob_dir)
    for job in jobs:
        assert 1 <= succeeded[job.id] <= started[job.id], (job.id, started, succeeded)
        assert len(handler_runs(broker.settings, job.id)) == 1, job.id
        manifest = blobs.read_manifest(job.id)
        blob_dir = broker.settings.blob_dir
        assert manifest and all((blob_dir / key).is_file() for key in manifest.outputs), job.id
    assert not [e for e in seen if e["event"] in {"job.failed", "job.retrying"}]
    broker.wait_until(
        lambda: broker.depth(broker.names.task_queue("resize")) == 0, 10, "an empty task queue"
    )
    assert broker.depth(broker.names.dead_queue) == 0
    redeliveries = sum(started.values()) - len(jobs)
    # Prefetch 1: a lost connection gives back at most the one job in hand.
    assert redeliveries <= len(worker.logged("connection_lost"))
    return redeliveries


def test_blackhole_is_detected_within_three_heartbeats_and_every_job_completes(
    proxy: TcpProxy, spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    worker = start_worker_behind(proxy, spawn, broker)
    in_hand, jobs = publish_batch(broker, in_hand_s=IN_HAND_S, more=3)
    in_the_handler_with_job_started_out(worker, events, in_hand)

    # The worker keeps trying while the path is dead; its attempt goes through once it is back.
    detected_s, lost = strike_and_heal(proxy, worker, broker, proxy.blackhole, notice_within=30)

    assert "AMQPHeartbeatTimeout" in lost, lost  # found by silence: nothing else tells
    # The broker says something at least once per heartbeat; three silent ones are enough.
    assert HEARTBEAT_S < detected_s < 3 * HEARTBEAT_S + 2, detected_s
    assert_the_job_in_hand_came_back_once(events, broker, worker, in_hand, jobs)


def test_reset_connection_is_reconnected_and_every_job_completes(
    proxy: TcpProxy, spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    worker = start_worker_behind(proxy, spawn, broker)
    in_hand, jobs = publish_batch(broker, in_hand_s=IN_HAND_S, more=3)
    in_the_handler_with_job_started_out(worker, events, in_hand)

    def reset_the_one_connection() -> None:
        assert proxy.reset() == 1  # the worker's one connection

    # Reset its next attempt too: a refused reconnect is retried, not fatal.
    detected_s, lost = strike_and_heal(
        proxy, worker, broker, reset_the_one_connection, notice_within=10
    )

    assert "ConnectionResetError" in lost, lost
    assert detected_s < 1.5, detected_s
    assert worker.logged("broker_connect_failed")
    assert_the_job_in_hand_came_back_once(events, broker, worker, in_hand, jobs)


def test_two_seconds_of_latency_each_way_slow_jobs_down_without_a_reconnect(
    proxy: TcpProxy, spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    worker = start_worker_behind(proxy, spawn, broker)
    proxy.latency(LATENCY_S)
    published = time.monotonic()
    _first, jobs = publish_batch(broker, in_hand_s=0.1, more=1)
    events.wait_for(jobs[0].id, "job.started", timeout=30)
    # Delivered through the proxy, then the event back through it: the latency is real.
    assert time.monotonic() - published >= 2 * LATENCY_S

    assert assert_no_job_lost_and_redeliveries_absorbed(events, broker, worker, jobs) == 0
    assert not worker.logged("connection_lost")
    assert not worker.logged("broker_silent")
    assert proxy.accepted == 1
    # A clean stop costs four round trips (cancel, two channel closes, connection close):
    # 16 s at this latency. Heal the path so the teardown's SIGTERM is quick.
    proxy.pass_through()
