"""Who published an event (issue 13, item 9), against the real broker and services.

Each service connects as its own throwaway broker user with the production permissions
(`shared.broker_permissions`) in the test's namespace; the topology is declared by the test's
administrator (guest), as compose's init step does. Every event carries the AMQP `user_id`,
which RabbitMQ checks; the audit records it as the publisher and, with AUDIT_PUBLISHERS,
refuses events from users not allowed to send them: kept in the chain, not believed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.app import app
from services.audit.verify import verify
from shared.amqp import Channel, connect_once
from shared.broker_permissions import NOTHING, Permissions, permissions
from shared.config import Settings
from shared.errors import AccessRefused, BrokerUnavailable, PublisherMismatch
from shared.messages import Event, Job, encode
from shared.topology import Names, ensure_topology
from tests.conftest import SpawnFn
from tests.support.audit import AuditService, audit_env, make_event, new_job_id, start_audit
from tests.support.broker import TestBroker
from tests.support.broker_users import broker_users, may_publish_events, role_rights
from tests.support.gateway import start_gateway
from tests.support.processes import service_env


def png() -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((40, 30)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def policy(users: dict[str, Settings]) -> str:
    """AUDIT_PUBLISHERS for the test's users, as compose sets it for its own."""
    allowed = {
        "gateway": "job.submitted,job.rejected",
        "resizer": "job.submitted,job.started,job.succeeded,job.retrying,job.failed",
        "audit": "job.dead",
        "dlq": "job.replayed",
    }
    return ";".join(f"{user_of(users[r])}={allowed[r]}" for r in allowed if r in users)


def user_of(settings: Settings) -> str:
    return settings.amqp_url.split("//", 1)[1].split(":", 1)[0]


@pytest.fixture
def users(settings: Settings, broker: TestBroker) -> Iterator[dict[str, Settings]]:
    """A broker user per role, and `mallory`, who may publish events and nothing else."""
    rights = role_rights(settings, "gateway", "resizer", "audit", "dlq")
    rights["mallory"] = may_publish_events(settings.namespace)
    with broker_users(settings, rights) as made:
        yield made


def forge(settings: Settings, event: Event, *, user_id: str | None = None) -> None:
    """Publish an event as `settings`' user, the way an attacker's own script would."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event.event_id,
            user_id=user_id,
        )
        channel.basic_publish(Names(settings.namespace).events_exchange, "", encode(event), props)
    finally:
        if connection.is_open:
            connection.close()


def recorded(audit: AuditService, event_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def seen() -> bool:
        for row in audit.get("/events", since=0, limit=1000).json()["events"]:
            if row["event"]["event_id"] == event_id:
                found.update(row["event"])
        return bool(found)

    audit.wait_for(seen, f"event {event_id} to be recorded")
    return found


def test_a_forged_user_id_is_refused_by_the_broker_and_named_clearly(
    users: dict[str, Settings], broker: TestBroker
) -> None:
    mallory = users["mallory"]
    gateway_user = user_of(users["gateway"])
    # An attacker's own script: the broker closes the channel, nothing is delivered.
    event = make_event("job.succeeded", new_job_id())
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        forge(mallory, event, user_id=gateway_user)
    assert closed.value.reply_code == 406
    assert f"user_id property set to '{gateway_user}'" in closed.value.reply_text

    # Our own publisher, were it ever misconfigured: a clear error naming both users.
    connection = connect_once(mallory, "trust-test")
    try:
        raw = Channel(
            connection.channel()._raw,
            app_id="trust-test",
            confirm=True,
            user_id=gateway_user,
        )
        with pytest.raises(PublisherMismatch) as caught:
            raw.publish(
                broker.names.events_exchange, "", encode(event), message_id="x", message_type="x"
            )
        assert gateway_user in str(caught.value) and user_of(mallory) in str(caught.value)
        # ... and the connection's own user_id is accepted: it is set on every message.
        connection.channel(confirm=True).publish(
            broker.names.events_exchange, "", encode(event), message_id="y", message_type="y"
        )
    finally:
        connection.close()


def test_a_least_privilege_user_cannot_declare_but_finds_the_topology(
    users: dict[str, Settings], broker: TestBroker
) -> None:
    connection = connect_once(users["gateway"], "trust-test")
    try:
        with pytest.raises(AccessRefused, match="ACCESS_REFUSED"):
            connection.channel().declare_queue(broker.names.task_queue("resize"), {})
        ensure_topology(connection, users["gateway"])  # declared by the administrator

        broker.delete_namespace()
        with pytest.raises(BrokerUnavailable, match="run `jobsuite declare` as an administrator"):
            ensure_topology(connection, users["gateway"])
    finally:
        connection.close()


def test_services_as_their_own_users_are_recorded_as_publishers_and_forgeries_are_refused(
    spawn: SpawnFn, settings: Settings, users: dict[str, Settings], tmp_path: Path
) -> None:
    audit = start_audit(
        spawn,
        settings,
        tmp_path / "audit",
        AMQP_URL=users["audit"].amqp_url,
        AUDIT_PUBLISHERS=policy(users),
    )
    resizer = spawn("services.resizer", settings_override=users["resizer"])
    gateway = start_gateway(spawn, users["gateway"], audit_url=audit.url)
    resizer.wait_logged("consuming")

    with gateway.client() as http:
        response = http.post("/jobs/resize", files={"file": ("p.png", png())}, data={"width": "8"})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        job = audit.wait_for_status(job_id, "succeeded")
        publishers = {e["event"]: (e.get("publisher"), e.get("refused")) for e in job["events"]}
        assert publishers == {
            "job.submitted": (user_of(users["gateway"]), None),
            "job.started": (user_of(users["resizer"]), None),
            "job.succeeded": (user_of(users["resizer"]), None),
        }

        # The reproduction: a forged job.dead for the succeeded job, a job.succeeded for an
        # id never submitted, from a user allowed neither, and one with no user_id at all.
        mallory = user_of(users["mallory"])
        dead = make_event("job.dead", job_id, seconds=10**6, error=("rejected", "forged"))
        forge(users["mallory"], dead, user_id=mallory)
        unknown = make_event("job.succeeded", new_job_id(), outputs=["outputs/x/y.png"])
        forge(users["mallory"], unknown, user_id=mallory)
        anonymous = make_event("job.dead", job_id, seconds=10**6, error=("expired", "forged"))
        forge(users["mallory"], anonymous)  # without a user_id
        assert recorded(audit, dead.event_id)["refused"] == (
            f"broker user '{mallory}' may publish no events (AUDIT_PUBLISHERS)"
        )
        assert recorded(audit, dead.event_id)["publisher"] == mallory
        assert recorded(audit, unknown.event_id)["refused"].startswith(f"broker user '{mallory}'")
        assert recorded(audit, anonymous.event_id)["publisher"] is None
        assert "without a user_id" in recorded(audit, anonymous.event_id)["refused"]

        job = audit.job(job_id)
        assert job is not None and (job["status"], job["dead_reason"]) == ("succeeded", None)
        assert [e["event"] for e in job["events"] if e.get("refused")] == ["job.dead", "job.dead"]
        assert audit.get(f"/jobs/{unknown.job_id}").status_code == 404
        assert http.get(f"/jobs/{job_id}").json()["status"] == "succeeded"  # the gateway too

        # The evidence is in the chain, which still verifies; and the suite still serves.
        again = http.post("/jobs/resize", files={"file": ("p.png", png())}, data={"width": "8"})
        assert again.status_code == 202, again.text
        audit.wait_for_status(again.json()["id"], "succeeded")
    audit.process.stop()
    lines = b"".join(p.read_bytes() for p in sorted((tmp_path / "audit" / "log").glob("*.jsonl")))
    refused = [json.loads(line) for line in lines.splitlines() if b'"refused"' in line]
    assert {r["event"]["event_id"] for r in refused} == {
        dead.event_id,
        unknown.event_id,
        anonymous.event_id,
    }
    assert verify(tmp_path / "audit").head_seq >= 9


def test_job_dead_from_the_dead_letters_and_job_replayed_from_the_dlq_user_are_believed(
    spawn: SpawnFn,
    broker: TestBroker,
    settings: Settings,
    users: dict[str, Settings],
    tmp_path: Path,
) -> None:
    audit_dir = tmp_path / "audit"
    audit = start_audit(
        spawn, settings, audit_dir, AMQP_URL=users["audit"].amqp_url, AUDIT_PUBLISHERS=policy(users)
    )
    events = broker.events()
    worker = spawn("tests.support.flagged_worker", settings_override=users["resizer"])
    worker.wait_logged("consuming")
    job = Job(type="resize", params={"fail_while": "flags/broken"})
    flag = settings.blob_dir / "flags" / "broken"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("on")
    broker.publish_job(job)  # straight to the queue, as the administrator

    dead = audit.wait_for_status(job.id, "dead")
    by_event = {e["event"]: e for e in dead["events"]}
    assert by_event["job.dead"]["publisher"] == user_of(users["audit"])
    assert by_event["job.dead"]["refused"] is None
    assert by_event["job.failed"]["publisher"] == user_of(users["resizer"])
    # Announced on `events` by the audit's own user (its permissions let it), and the copy
    # that came back was dropped as a duplicate: one job.dead in the job's events.
    (announced,) = events.wait_for(job.id, "job.dead")
    assert announced["event_id"] == by_event["job.dead"]["event_id"]
    audit.process.wait_logged("duplicate_event_ignored")
    assert [e["event"] for e in dead["events"]].count("job.dead") == 1

    flag.unlink()
    env = service_env(users["dlq"], **audit_env(settings, audit_dir, audit.port))
    replayed = CliRunner().invoke(app, ["dlq", "replay", job.id], env=env)
    assert replayed.exit_code == 0, replayed.output

    record = audit.wait_for_status(job.id, "succeeded")
    replay = next(e for e in record["events"] if e["event"] == "job.replayed")
    assert (replay["publisher"], replay.get("refused"), record["replays"]) == (
        user_of(users["dlq"]),
        None,
        1,
    )


def test_the_dlq_user_may_not_read_the_audit_queues_nor_publish_dead_letters(
    users: dict[str, Settings], broker: TestBroker
) -> None:
    connection = connect_once(users["dlq"], "trust-test")
    try:
        with pytest.raises(AccessRefused):
            connection.channel().get(broker.names.audit_dead_queue)
        with pytest.raises(AccessRefused):
            connection.channel(confirm=True).publish(
                broker.names.dead_exchange, "", b"{}", message_id="x", message_type="x"
            )
    finally:
        connection.close()


def test_an_audit_user_that_may_not_publish_still_records_job_dead_and_says_why(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    """A deployment whose audit user has the permissions of before (read only): the dead
    letter is recorded and acked all the same, one error line names the missing right."""
    read_only = Permissions(NOTHING, NOTHING, permissions("audit", settings.namespace).read)
    with broker_users(settings, {"audit": read_only}) as made:
        audit = start_audit(spawn, settings, tmp_path / "audit", AMQP_URL=made["audit"].amqp_url)
        # Dead-lettered by hand, as the broker would (the administrator may).
        broker.channel.basic_publish(
            broker.names.dead_exchange,
            "",
            b"\xff not a job",
            pika.BasicProperties(message_id="garbage-1"),
        )
        record = audit.wait_for_status("garbage-1", "dead")
        audit.process.wait_logged("job_dead_not_announced")
        (line,) = audit.process.logged("job_dead_not_announced")
        assert line["job_ids"] == ["garbage-1"] and "ACCESS_REFUSED" in line["error"]
        assert "write permission on the events exchange" in line["hint"]
        assert record["events"][-1]["publisher"] == user_of(made["audit"])
        broker.wait_until(
            lambda: broker.depth(broker.names.audit_dead_queue) == 0, 10, "the dead letter acked"
        )
        after = make_event("job.started", new_job_id())
        forge(settings, after)  # the audit goes on recording
        audit.wait_for_status(after.job_id, "started")
        audit.process.stop()
