"""The audit service as a real process against the real RabbitMQ: what it records, how it
survives being down or killed, and the status it reports for each job."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from services.audit.verify import verify
from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.audit import (
    AuditService,
    audit_env,
    free_port,
    make_event,
    new_job_id,
    publish_event,
    start_audit,
)
from tests.support.broker import TestBroker
from tests.support.processes import ServiceProcess

WORKER = "tests.support.scripted_worker"


def start_workers(spawn: SpawnFn, count: int = 1) -> list[ServiceProcess]:
    workers = [spawn(WORKER) for _ in range(count)]
    for w in workers:
        w.wait_logged("consuming")
    return workers


def job(**params: object) -> Job:
    return Job(type="resize", params=params)


def all_jobs(audit: AuditService) -> dict[str, dict]:
    return {j["id"]: j for j in audit.get("/jobs", limit=1000).json()["jobs"]}


def test_a_retried_jobs_events_land_in_the_log_and_the_read_model(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    start_workers(spawn)
    j = job(fail_until=2)
    broker.publish_job(j)

    record = audit.wait_for_status(j.id, "succeeded")
    assert record["attempts"] == 2
    assert record["outputs"] == [f"outputs/{j.id}/result.txt"]
    assert record["duration_ms"] >= 0 and record["error"] is None
    assert [(e["event"], e["attempt"]) for e in record["events"]] == [
        ("job.started", 1),
        ("job.retrying", 1),
        ("job.started", 2),
        ("job.succeeded", 2),
    ]
    audit.process.signal(signal.SIGTERM)
    assert audit.process.wait(15) == 0
    report = verify(audit.audit_dir)
    assert report.ok and report.records == 4
    # Every recorded event is also a log line: the service's stdout reads as the audit trail.
    recorded = audit.process.logged("recorded")
    assert [(r["seq"], r["job_event"]) for r in recorded][-1] == (4, "job.succeeded")


def test_audit_killed_while_200_jobs_run_catches_up_with_every_event_once(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    audit_dir = tmp_path / "audit"
    audit = start_audit(spawn, settings, audit_dir, AUDIT_SEGMENT_BYTES="40000")
    start_workers(spawn, 2)
    jobs = [
        job(fail="permanent") if i % 10 == 0 else job(fail_until=2) if i % 10 == 1 else job()
        for i in range(200)
    ]
    for j in jobs:
        broker.publish_job(j)
    audit.wait_for(lambda: audit.get("/stats").json()["events"] >= 50, "the first events")
    audit.process.kill()  # no goodbye: the batch in hand is redelivered to the next one
    events.wait_for_terminal([j.id for j in jobs], timeout=60)

    again = start_audit(spawn, settings, audit_dir, AUDIT_SEGMENT_BYTES="40000")
    # The workers' events; the audit's own job.dead come later, from the dead letters.
    published = {e["event_id"] for e in events.poll() if e["event"] != "job.dead"}
    again.wait_for(
        lambda: again.get("/stats").json()["by_status"] == {"succeeded": 180, "dead": 20},
        "every job's final status",
    )
    # Every event once, plus one job.dead per dead letter.
    assert again.get("/stats").json()["events"] == len(published) + 20
    records = all_jobs(again)
    # Each job.dead recorded was announced on `events` under its id (twice at most, when the
    # kill came between announcing and acking), and the copies were not recorded again.
    recorded_dead = {
        e["event_id"]
        for j in jobs[::10]
        for e in (again.job(j.id) or {})["events"]
        if e["event"] == "job.dead"
    }
    assert len(recorded_dead) == 20
    broker.wait_until(
        lambda: {e["event_id"] for e in events.poll() if e["event"] == "job.dead"} == recorded_dead,
        15,
        "every job.dead announced",
    )
    for i, j in enumerate(jobs):
        r = records[j.id]
        if i % 10 == 0:
            assert (r["status"], r["dead_reason"], r["error"]["kind"]) == (
                "dead",
                "rejected",
                "scripted",
            )
        else:
            assert r["status"] == "succeeded"
            assert r["attempts"] == (2 if i % 10 == 1 else 1)
    report = verify(audit_dir)
    assert report.ok, report.problem
    assert report.records == len(published) + 20
    assert report.segments > 1


def test_out_of_order_and_repeated_events_yield_the_right_status(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    done, failed = new_job_id(), new_job_id()
    succeeded = make_event("job.succeeded", done, attempt=2, seconds=4, outputs=["o"])
    scrambled = [
        succeeded,
        make_event("job.started", done, attempt=2, seconds=3),
        make_event("job.retrying", done, attempt=1, seconds=2, error=("transient", "x")),
        make_event("job.started", done, attempt=1, seconds=1),
        make_event("job.submitted", done, seconds=0),
        succeeded,  # a redelivered copy
        make_event("job.failed", failed, seconds=2, error=("invalid_params", "no width")),
        make_event("job.started", failed, seconds=1),
        make_event("job.submitted", failed, seconds=0),
    ]
    for event in scrambled:
        publish_event(broker, event)

    audit.wait_for(lambda: audit.get("/stats").json()["head_seq"] == 8, "8 distinct events")
    record = audit.wait_for_status(done, "succeeded")
    assert record["attempts"] == 2
    assert record["events"][0]["event"] == "job.submitted"
    failure = audit.wait_for_status(failed, "failed")
    assert failure["error"] == {"kind": "invalid_params", "message": "no width"}
    assert audit.process.logged("duplicate_event_ignored")


def test_dead_lettered_jobs_show_as_dead_with_their_reason(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    start_workers(spawn)
    bad = job(fail="permanent")
    broker.publish_job(bad)
    broker.publish_raw(b"\xff not json", message_id="garbage-1")

    record = audit.wait_for_status(bad.id, "dead")
    assert record["dead_reason"] == "rejected"
    assert record["error"] == {"kind": "scripted", "message": "scripted permanent failure"}
    assert [e["event"] for e in record["events"]] == ["job.started", "job.failed", "job.dead"]
    dead_event = record["events"][-1]
    assert dead_event["service"] == "audit"
    assert broker.names.task_queue("resize") in dead_event["error"]["message"]

    garbage = audit.wait_for_status("garbage-1", "dead")
    assert garbage["error"]["kind"] == "rejected"
    assert "not a valid job" in garbage["error"]["message"]
    # jobs.dead keeps its own copies for `jobsuite dlq`.
    assert broker.depth(broker.names.dead_queue) == 2


def test_a_dead_job_reaches_a_tutorial_subscriber_as_job_dead_and_is_recorded_once(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    # The RabbitMQ tutorial's receive_logs.py, with the two changes the README gives: the
    # exchange's namespaced name, and durable=True (its default, False, is refused).
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    exchange = f"{settings.namespace}.events"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="inequivalent arg 'durable'"):
        connection.channel().exchange_declare(exchange=exchange, exchange_type="fanout")
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(exchange=exchange, queue=queue)
    received: list[tuple[Any, dict[str, Any]]] = []
    channel.basic_consume(
        queue, lambda _ch, _m, props, body: received.append((props, json.loads(body))), True
    )

    audit_dir = tmp_path / "audit"
    audit = start_audit(spawn, settings, audit_dir)
    start_workers(spawn)
    bad = job(fail="permanent")
    broker.publish_job(bad)
    record = audit.wait_for_status(bad.id, "dead")
    deadline = time.monotonic() + 15
    while not any(e["event"] == "job.dead" for _p, e in received):
        assert time.monotonic() < deadline, f"no job.dead among {[e for _p, e in received]}"
        connection.process_data_events(time_limit=0.1)
    connection.process_data_events(time_limit=0.5)  # a second copy would be here by now
    connection.close()

    assert [e["event"] for _p, e in received] == ["job.started", "job.failed", "job.dead"]
    props, dead = received[-1]
    assert (dead["job_id"], dead["type"], dead["service"]) == (bad.id, "resize", "audit")
    assert dead["error"]["kind"] == "rejected"
    assert broker.names.task_queue("resize") in dead["error"]["message"]
    assert dead["event_id"] == record["events"][-1]["event_id"]
    assert (props.type, props.message_id, props.user_id) == ("job.dead", dead["event_id"], "guest")
    # Its own copy came back through audit.events and was dropped, not recorded twice.
    audit.process.wait_logged("duplicate_event_ignored")
    (ignored,) = audit.process.logged("duplicate_event_ignored")
    assert ignored["event_id"] == dead["event_id"]
    assert [e["event"] for e in audit.job(bad.id)["events"]] == [
        "job.started",
        "job.failed",
        "job.dead",
    ]
    audit.process.signal(signal.SIGTERM)
    assert audit.process.wait(15) == 0
    report = verify(audit_dir)
    assert report.ok and report.records == 3


def test_a_message_that_is_not_an_event_is_logged_and_skipped(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    broker.channel.basic_publish(broker.names.events_exchange, "", b"{not an event")
    after = make_event("job.started", new_job_id())
    publish_event(broker, after)

    audit.wait_for_status(after.job_id, "started")
    dropped = audit.process.logged("undecodable_event_dropped")
    assert dropped and dropped[0]["body_preview"] == "{not an event"
    assert broker.depth(broker.names.audit_events_queue) == 0


def test_a_second_audit_service_on_the_same_folder_is_refused(
    spawn: SpawnFn, settings: Settings, tmp_path: Path
) -> None:
    first = start_audit(spawn, settings, tmp_path / "audit")
    second = spawn("services.audit", **audit_env(settings, tmp_path / "audit", free_port()))
    assert second.wait(15) == 1
    busy = second.logged("audit_dir_busy")
    assert busy and f"pid {first.process.pid}" in busy[0]["error"]
    assert first.process.proc.poll() is None


def test_a_taken_port_fails_at_start_with_one_clear_line(
    spawn: SpawnFn, settings: Settings, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        audit = spawn(
            "services.audit",
            AUDIT_DIR=str(tmp_path / "audit"),
            AUDIT_HOST="127.0.0.1",
            AUDIT_PORT=str(port),
        )
        assert audit.wait(15) == 1
    (line,) = audit.logged("api_failed_to_start")
    assert line["port"] == port and "in use" in line["error"]
    assert not any("Traceback" in str(entry) for entry in audit.log_lines())
