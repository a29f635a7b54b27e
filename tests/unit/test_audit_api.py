"""The read API over a real read model (no broker): answers, paging, and clear 4xx errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.audit.api import create_app
from services.audit.queries import Queries
from services.audit.readmodel import DB_NAME
from services.audit.recorder import Recorder
from shared.config import Settings
from shared.messages import JobRecord
from shared.state import API_KEYS_FILE
from shared.state.keys import SqliteApiKeyStore
from tests.support.audit import make_event, new_job_id
from tests.support.keys import bearer


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder.open(Settings(audit_dir=tmp_path / "audit"))


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[SqliteApiKeyStore]:
    store = SqliteApiKeyStore.open(tmp_path / "state" / API_KEYS_FILE)
    yield store
    store.close()


@pytest.fixture
def client(recorder: Recorder, keys: SqliteApiKeyStore) -> TestClient:
    _admin, key = keys.create("admin", admin=True)
    app = create_app(Queries(recorder.model.path), consuming=lambda: True, keys=keys)
    return TestClient(app, headers=bearer(key), base_url="http://localhost")


def record_dead_job(recorder: Recorder) -> str:
    job_id = new_job_id()
    events = [
        make_event("job.started", job_id),
        make_event("job.failed", job_id, seconds=1, error=("scripted", "boom"), duration_ms=2.0),
        make_event("job.dead", job_id, seconds=2, error=("rejected", "from ns.jobs.resize")),
    ]
    recorder.record([("events", e) for e in events])
    return job_id


def test_a_job_is_returned_with_its_history(recorder: Recorder, client: TestClient) -> None:
    job_id = record_dead_job(recorder)
    response = client.get(f"/jobs/{job_id}")

    assert response.status_code == 200
    job = JobRecord.model_validate(response.json())
    assert (job.status, job.dead_reason, job.attempts) == ("dead", "rejected", 1)
    assert job.error is not None and job.error.message == "boom"
    assert [e.event for e in job.events] == ["job.started", "job.failed", "job.dead"]


def test_an_unknown_job_is_404(client: TestClient) -> None:
    response = client.get(f"/jobs/{new_job_id()}")
    assert response.status_code == 404
    assert "no job" in response.json()["detail"]


def test_jobs_page_through_with_the_cursor(recorder: Recorder, client: TestClient) -> None:
    ids = [record_dead_job(recorder) for _ in range(3)]
    first = client.get("/jobs", params={"limit": 2, "status": "dead"}).json()
    second = client.get("/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert [j["id"] for j in first["jobs"]] == [ids[2], ids[1]]
    assert [j["id"] for j in second["jobs"]] == [ids[0]]
    assert second["next_cursor"] is None
    assert first["jobs"][0]["events"] == []  # the history only comes with GET /jobs/{id}


def test_bad_query_parameters_are_422(client: TestClient) -> None:
    for params in ({"status": "lost"}, {"limit": 0}, {"limit": 5000}, {"since": "yesterday"}):
        assert client.get("/jobs", params=params).status_code == 422, params
    assert client.get("/events", params={"since": -1}).status_code == 422


def test_events_page_in_log_order(recorder: Recorder, client: TestClient) -> None:
    record_dead_job(recorder)
    record_dead_job(recorder)
    page = client.get("/events", params={"since": 1, "limit": 4}).json()
    rest = client.get("/events", params={"since": page["next_since"]}).json()

    assert [e["seq"] for e in page["events"]] == [2, 3, 4, 5]
    assert page["more"] is True
    assert [e["seq"] for e in rest["events"]] == [6] and rest["more"] is False
    assert page["events"][0]["event"]["event"] == "job.failed"


def test_stats_and_health(recorder: Recorder, client: TestClient) -> None:
    record_dead_job(recorder)
    stats = client.get("/stats").json()
    assert stats["by_status"] == {"dead": 1}
    assert stats["failure_reasons"] == [{"status": "dead", "kind": "scripted", "count": 1}]
    assert client.get("/healthz").json() == {"status": "ok", "consuming": True, "head_seq": 3}


def test_a_refused_submission_is_a_rejection_in_stats_not_a_failed_job(
    recorder: Recorder, client: TestClient
) -> None:
    record_dead_job(recorder)
    refusal = make_event("job.rejected", new_job_id(), error=("invalid", "give width"))
    recorder.record([("events", refusal)])
    stats = client.get("/stats").json()
    assert (stats["jobs"], stats["by_status"]) == (1, {"dead": 1})
    assert stats["failure_reasons"] == [{"status": "dead", "kind": "scripted", "count": 1}]
    assert stats["rejected"] == {
        "submissions": 1,
        "by_type": {"resize": 1},
        "by_kind": {"invalid": 1},
    }
    listed = client.get("/jobs", params={"status": "rejected"})
    assert listed.status_code == 200, listed.text
    assert [j["id"] for j in listed.json()["jobs"]] == [refusal.job_id]
    assert client.get("/jobs", params={"status": "failed"}).json()["jobs"] == []


def test_an_unreadable_read_model_is_503_not_a_crash(tmp_path: Path) -> None:
    broken = tmp_path / DB_NAME
    broken.write_bytes(b"this is not sqlite" * 100)
    client = TestClient(create_app(Queries(broken), keys=None), base_url="http://localhost")
    assert client.get("/stats").status_code == 503


def test_events_and_jobs_show_each_events_publisher_and_refusal(tmp_path: Path) -> None:
    policy = Settings.from_env({"AUDIT_PUBLISHERS": "resizer=job.started"}).audit_publishers
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit", audit_publishers=policy))
    client = TestClient(
        create_app(Queries(recorder.model.path), consuming=lambda: True, keys=None),
        base_url="http://localhost",
    )  # AUTH_DISABLED: what is shown is the point here
    job_id = new_job_id()
    started, forged = make_event("job.started", job_id), make_event("job.dead", job_id, seconds=1)
    recorder.record([("events", started, "resizer"), ("events", forged, "mallory")])

    listed = client.get("/events").json()["events"]
    assert [(e["event"]["publisher"], e["event"]["refused"] is not None) for e in listed] == [
        ("resizer", False),
        ("mallory", True),
    ]
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "started"
    assert [(e["event"], e["publisher"], e["refused"] is not None) for e in job["events"]] == [
        ("job.started", "resizer", False),
        ("job.dead", "mallory", True),
    ]
