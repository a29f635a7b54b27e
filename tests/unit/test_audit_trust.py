"""Who published an event: AUDIT_PUBLISHERS parsed, the policy's verdicts, the publisher and
the refusal kept in the chain (old records still verify), refused events left out of a job's
status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.audit.chain import Marks, canonical_json, parse_record, seal
from services.audit.queries import Queries
from services.audit.readmodel import DB_NAME
from services.audit.recorder import Recorder, rebuild
from services.audit.segments import AuditLog
from services.audit.trust import PublisherPolicy
from services.audit.verify import verify
from shared.amqp import broker_user
from shared.config import Settings
from shared.errors import ConfigError
from shared.messages import RecordedEvent, decode_event, encode
from tests.support.audit import make_event, new_job_id

RIGHTS = "gateway=job.submitted,job.rejected;resizer=job.started,job.succeeded;dlq=job.replayed"


def policy(raw: str = RIGHTS) -> PublisherPolicy:
    return PublisherPolicy.from_settings(Settings.from_env({"AUDIT_PUBLISHERS": raw}))


# --- AUDIT_PUBLISHERS ------------------------------------------------------------------------


def test_publishers_parse_into_users_and_their_events() -> None:
    s = Settings.from_env({"AUDIT_PUBLISHERS": " gateway = job.submitted, job.rejected ; ops=*;"})
    assert dict(s.audit_publishers) == {
        "gateway": frozenset({"job.submitted", "job.rejected"}),
        "ops": frozenset({"*"}),
    }
    assert Settings.from_env({}).audit_publishers == ()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("gateway", "must look like user=event,event;user=event"),
        ("=job.started", "must look like"),
        ("a b=job.started", "must look like"),
        ("gateway=job.sent", "unknown event 'job.sent' for 'gateway'"),
        ("a=job.started;a=job.failed", "names the user 'a' twice"),
        ("a=", "gives 'a' no events"),
    ],
)
def test_a_bad_publishers_value_is_one_config_error_line(raw: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUDIT_PUBLISHERS": raw})
    message = str(caught.value)
    assert message.startswith("AUDIT_PUBLISHERS ") and says in message and "\n" not in message


# --- the policy ------------------------------------------------------------------------------


def test_without_a_policy_every_event_is_believed() -> None:
    assert PublisherPolicy().refusal("events", None, "job.dead") is None
    assert PublisherPolicy().refusal("events", "mallory", "job.succeeded") is None


def test_the_policy_refuses_what_a_user_may_not_send_and_unknown_publishers() -> None:
    p = policy()
    assert p.refusal("events", "resizer", "job.succeeded") is None
    assert p.refusal("events", "dlq", "job.replayed") is None
    assert p.refusal("events", "gateway", "job.succeeded") == (
        "broker user 'gateway' may not publish job.succeeded (AUDIT_PUBLISHERS)"
    )
    assert "'mallory' may publish no events" in str(p.refusal("events", "mallory", "job.dead"))
    assert "without a user_id" in str(p.refusal("events", None, "job.started"))
    assert policy("ops=*").refusal("events", "ops", "job.dead") is None


def test_a_dead_letter_is_the_audits_own_word_and_never_refused() -> None:
    assert policy().refusal("dead", "audit", "job.dead") is None


def test_the_publisher_is_the_user_of_the_amqp_url() -> None:
    assert broker_user("amqp://resizer:secret@rabbitmq:5672/%2F") == "resizer"
    assert broker_user("amqp://rabbitmq:5672/%2F") == "guest"  # pika's default login


def test_an_event_claiming_audit_fields_does_not_decode() -> None:
    body = json.loads(encode(make_event("job.dead", new_job_id())))
    with pytest.raises(Exception, match="publisher"):
        decode_event(json.dumps({**body, "publisher": "audit"}).encode())


# --- the chain -------------------------------------------------------------------------------


def test_marks_are_sealed_into_the_hash_and_a_record_without_them_is_unchanged() -> None:
    event = make_event("job.started", new_job_id()).model_dump(mode="json")
    plain = seal(1, "0" * 64, "t", "events", event)
    marked = seal(1, "0" * 64, "t", "events", event, Marks("mallory", "not allowed"))
    # The old format: exactly the six fields, hashed as before.
    assert set(json.loads(plain.line())) == {
        "seq",
        "prev",
        "recorded_at",
        "source",
        "event",
        "hash",
    }
    assert parse_record(plain.line()[:-1]) == plain
    assert parse_record(marked.line()[:-1]) == marked
    assert marked.hash != plain.hash
    # Forging the publisher of a sealed record breaks its hash.
    forged = json.loads(marked.line())
    forged["publisher"] = "resizer"
    with pytest.raises(Exception, match="hash does not match"):
        parse_record(canonical_json(forged))


def test_a_log_mixing_old_and_marked_records_verifies(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    log = AuditLog(audit_dir / "log", 1 << 20)
    job_id = new_job_id()
    log.append([("events", make_event("job.submitted", job_id).model_dump(mode="json"))], "t")
    log.append(
        [("events", make_event("job.started", job_id).model_dump(mode="json"), Marks("x"))], "t"
    )
    log.close()
    assert verify(audit_dir).head_seq == 2


# --- the read model --------------------------------------------------------------------------


def test_a_refused_job_dead_is_kept_as_evidence_but_the_job_stays_succeeded(
    tmp_path: Path,
) -> None:
    settings = Settings(audit_dir=tmp_path / "audit", audit_publishers=policy_rights())
    recorder = Recorder.open(settings)
    job_id = new_job_id()
    recorder.record(
        [
            ("events", make_event("job.submitted", job_id), "gateway"),
            ("events", make_event("job.started", job_id, seconds=1), "resizer"),
            ("events", make_event("job.succeeded", job_id, seconds=2, outputs=["o"]), "resizer"),
            ("events", make_event("job.dead", job_id, seconds=3, error=("x", "forged")), "mallory"),
        ]
    )
    job = Queries(settings.audit_dir / DB_NAME).job(job_id)
    assert job is not None and job.status == "succeeded" and job.dead_reason is None
    dead = [e for e in job.events if e.event == "job.dead"]
    assert [(e.publisher, e.refused) for e in dead] == [
        ("mallory", "broker user 'mallory' may publish no events (AUDIT_PUBLISHERS)")
    ]
    assert {e.publisher for e in job.events if not e.refused} == {"gateway", "resizer"}
    recorder.close()

    # The verdict lives in the log: a rebuilt read model says the same without the policy.
    rebuild(Settings(audit_dir=settings.audit_dir))
    again = Queries(settings.audit_dir / DB_NAME).job(job_id)
    assert again is not None and again.status == "succeeded"


def test_an_unknown_job_only_refused_events_speak_of_has_no_status(tmp_path: Path) -> None:
    settings = Settings(audit_dir=tmp_path / "audit", audit_publishers=policy_rights())
    recorder = Recorder.open(settings)
    job_id = new_job_id()
    recorder.record([("events", make_event("job.succeeded", job_id, outputs=["o"]), None)])
    queries = Queries(settings.audit_dir / DB_NAME)
    assert queries.job(job_id) is None
    [event] = queries.events(0, 10)
    assert RecordedEvent.model_validate(event["event"]).refused == (
        "job.succeeded published without a user_id: its publisher is unknown"
    )
    recorder.close()


def test_without_a_policy_the_publisher_is_recorded_and_believed(tmp_path: Path) -> None:
    settings = Settings(audit_dir=tmp_path / "audit")
    recorder = Recorder.open(settings)
    job_id = new_job_id()
    recorder.record(
        [
            ("events", make_event("job.succeeded", job_id), "guest"),
            ("events", make_event("job.started", job_id), None),  # old-style caller
        ]
    )
    job = Queries(settings.audit_dir / DB_NAME).job(job_id)
    assert job is not None and job.status == "succeeded"
    assert [(e.publisher, e.refused) for e in job.events] == [(None, None), ("guest", None)]
    recorder.close()


def policy_rights() -> tuple[tuple[str, frozenset[str]], ...]:
    return Settings.from_env({"AUDIT_PUBLISHERS": RIGHTS}).audit_publishers
