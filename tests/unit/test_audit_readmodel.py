"""Recording into the log and the SQLite read model: once per event id, caught up after a
crash, rebuilt from the log, pruned by age, queried by the API's questions."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from services.audit.queries import Queries
from services.audit.readmodel import DB_NAME
from services.audit.recorder import Recorder, rebuild
from services.audit.verify import verify
from shared.config import Settings
from shared.messages import Event, utc_now
from tests.support.audit import make_event, new_job_id


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(audit_dir=tmp_path / "audit", audit_segment_bytes=4096)


@pytest.fixture
def recorder(settings: Settings) -> Recorder:
    return Recorder.open(settings)


def queries(settings: Settings) -> Queries:
    return Queries(settings.audit_dir / DB_NAME)


def entries(*events: Event) -> list[tuple[str, Event]]:
    return [("events", e) for e in events]


def a_job_life(job_id: str, job_type: str = "resize") -> list[Event]:
    return [
        make_event("job.submitted", job_id, job_type=job_type),
        make_event("job.started", job_id, job_type=job_type, seconds=1),
        make_event("job.succeeded", job_id, job_type=job_type, seconds=2, outputs=["o"]),
    ]


def test_a_deleted_job_keeps_its_status_and_shows_when_it_was_deleted(
    recorder: Recorder, settings: Settings
) -> None:
    job_id = new_job_id()
    deleted = make_event("job.deleted", job_id, seconds=60, client="ann")
    recorder.record(entries(*a_job_life(job_id), deleted))

    job = queries(settings).job(job_id)

    assert job is not None
    assert (job.status, job.outputs) == ("succeeded", ["o"])
    assert job.deleted_at == deleted.at
    assert job.events[-1].event == "job.deleted"


def test_recorded_events_land_in_the_log_and_the_job_row(
    recorder: Recorder, settings: Settings
) -> None:
    job_id = new_job_id()
    records = recorder.record(entries(*reversed(a_job_life(job_id))))

    assert [r.seq for r in records] == [1, 2, 3]
    job = queries(settings).job(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.outputs) == ("succeeded", 1, ["o"])
    assert [e.event for e in job.events] == ["job.submitted", "job.started", "job.succeeded"]
    assert verify(settings.audit_dir).head_seq == 3


def test_a_repeated_event_is_recorded_once(recorder: Recorder, settings: Settings) -> None:
    started = make_event("job.started", new_job_id())
    assert len(recorder.record(entries(started, started))) == 1
    assert recorder.record(entries(started)) == []
    assert queries(settings).stats()["events"] == 1


def test_a_crash_between_log_and_read_model_is_caught_up_and_not_recorded_twice(
    recorder: Recorder, settings: Settings
) -> None:
    job_id = new_job_id()
    life = a_job_life(job_id)
    # The log got the batch, the process died before the read model (and the ack).
    recorder.audit_log.append([("events", e.model_dump(mode="json")) for e in life], "t")
    recorder.close()

    again = Recorder.open(settings)
    assert again.model.head_seq == 3
    assert again.record(entries(*life)) == []  # the broker's redelivery
    assert verify(settings.audit_dir).records == 3
    job = queries(settings).job(job_id)
    assert job is not None and job.status == "succeeded"


def test_rebuild_recreates_the_read_model_from_the_log(
    recorder: Recorder, settings: Settings
) -> None:
    ids = [new_job_id() for _ in range(30)]
    for job_id in ids:
        recorder.record(entries(*a_job_life(job_id)))
    before = queries(settings).job(ids[7])
    recorder.close()
    (settings.audit_dir / DB_NAME).write_bytes(b"not a database any more")

    assert rebuild(settings) == 90
    after = queries(settings).job(ids[7])
    assert after == before
    assert queries(settings).stats()["jobs"] == 30
    assert len(list((settings.audit_dir / "log").iterdir())) > 1  # it rotated


def test_rows_older_than_the_retention_are_pruned(recorder: Recorder, settings: Settings) -> None:
    old, fresh = new_job_id(), new_job_id()
    recorder.clock = lambda: utc_now() - timedelta(days=40)
    recorder.record(entries(*a_job_life(old)))
    recorder.clock = utc_now
    recorder.record(entries(*a_job_life(fresh)))

    recorder.prune(retention_days=30)
    q = queries(settings)
    assert q.job(old) is None
    assert q.job(fresh) is not None
    assert q.stats()["events"] == 3


def test_jobs_are_listed_newest_first_in_pages_and_filtered(
    recorder: Recorder, settings: Settings
) -> None:
    ids = [new_job_id() for _ in range(5)]
    for i, job_id in enumerate(ids):
        job_type = "mail" if i % 2 else "resize"
        recorder.record(entries(*a_job_life(job_id, job_type)[: 3 if i < 3 else 2]))
    q = queries(settings)

    first, cursor = q.jobs(status=None, job_type=None, since=None, limit=2, before=None)
    assert [j.id for j in first] == [ids[4], ids[3]]
    second, cursor = q.jobs(status=None, job_type=None, since=None, limit=2, before=cursor)
    third, end = q.jobs(status=None, job_type=None, since=None, limit=2, before=cursor)
    assert [j.id for j in second + third] == [ids[2], ids[1], ids[0]]
    assert end is None
    started, _ = q.jobs(status="started", job_type=None, since=None, limit=10, before=None)
    assert {j.id for j in started} == {ids[3], ids[4]}
    mail, _ = q.jobs(status=None, job_type="mail", since=None, limit=10, before=None)
    assert {j.id for j in mail} == {ids[1], ids[3]}
    future = utc_now() + timedelta(minutes=1)
    assert q.jobs(status=None, job_type=None, since=future, limit=10, before=None)[0] == []


def test_events_are_read_back_in_log_order_after_a_seq(
    recorder: Recorder, settings: Settings
) -> None:
    recorder.record(entries(*a_job_life(new_job_id()), *a_job_life(new_job_id())))
    page = queries(settings).events(since=2, limit=3)
    assert [e["seq"] for e in page] == [3, 4, 5]
    assert page[0]["event"]["event"] == "job.succeeded"


def test_stats_count_jobs_by_type_and_status_with_failure_reasons(
    recorder: Recorder, settings: Settings
) -> None:
    failed, dead = new_job_id(), new_job_id()
    recorder.record(
        entries(
            *a_job_life(new_job_id()),
            make_event("job.failed", failed, job_type="mail", error=("invalid_params", "to")),
            make_event("job.failed", dead, error=("scripted", "boom")),
            make_event("job.dead", dead, seconds=1, error=("rejected", "from q")),
        )
    )
    stats = queries(settings).stats()

    assert stats["jobs"] == 3
    assert stats["by_type"] == {"resize": {"succeeded": 1, "dead": 1}, "mail": {"failed": 1}}
    assert {(r["status"], r["kind"]) for r in stats["failure_reasons"]} == {
        ("failed", "invalid_params"),
        ("dead", "scripted"),
    }
    assert stats["dead_reasons"] == {"rejected": 1}
    assert stats["rejected"] == {"submissions": 0, "by_type": {}, "by_kind": {}}
    assert stats["head_seq"] == 6


def refused(job_type: str, kind: str) -> Event:
    """A submission the gateway refused: a fresh id, one `job.rejected`."""
    return make_event("job.rejected", new_job_id(), job_type=job_type, error=(kind, "why"))


def test_refused_submissions_are_counted_apart_never_as_failed_jobs(
    recorder: Recorder, settings: Settings
) -> None:
    failed = new_job_id()
    recorder.record(
        entries(
            *a_job_life(new_job_id()),
            make_event("job.failed", failed, job_type="mail", error=("invalid_params", "to")),
            refused("resize", "invalid"),
            refused("resize", "too_large"),
            refused("mail", "invalid"),
        )
    )
    stats = queries(settings).stats()

    assert stats["jobs"] == 2
    assert stats["by_status"] == {"succeeded": 1, "failed": 1}
    assert stats["by_type"] == {"resize": {"succeeded": 1}, "mail": {"failed": 1}}
    assert stats["failure_reasons"] == [{"status": "failed", "kind": "invalid_params", "count": 1}]
    assert stats["rejected"] == {
        "submissions": 3,
        "by_type": {"resize": 2, "mail": 1},
        "by_kind": {"invalid": 2, "too_large": 1},
    }
    rejected, _cursor = queries(settings).jobs(
        status="rejected", job_type=None, since=None, limit=10, before=None
    )
    assert len(rejected) == 3 and {r.status for r in rejected} == {"rejected"}
    assert rejected[0].error is not None and rejected[0].error.message == "why"


def test_a_read_model_that_folded_refusals_as_failed_is_corrected_on_opening(
    recorder: Recorder, settings: Settings
) -> None:
    recorder.record(entries(refused("resize", "invalid"), *a_job_life(new_job_id())))
    failed = new_job_id()
    recorder.record(entries(make_event("job.failed", failed, error=("scripted", "boom"))))
    recorder.close()
    db = sqlite3.connect(settings.audit_dir / DB_NAME)
    db.execute("UPDATE jobs SET status = 'failed' WHERE status = 'rejected'")  # as before
    db.commit()
    db.close()

    Recorder.open(settings).close()
    stats = queries(settings).stats()
    assert stats["by_status"] == {"succeeded": 1, "failed": 1}
    assert stats["rejected"]["submissions"] == 1
