"""The audit service as a real process with STATE_URL=postgresql://…: its read model is tables
of that database (no file in AUDIT_DIR but the log), its read API answers from them, and
`jobsuite audit verify` and `rebuild` work on them."""

from __future__ import annotations

import signal
from pathlib import Path

from typer.testing import CliRunner

from cli.app import app
from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.audit import AuditService, audit_env, free_port
from tests.support.broker import TestBroker
from tests.support.keys import admin_key
from tests.support.postgres import query
from tests.support.processes import service_env


def start_audit_on(
    spawn: SpawnFn, settings: Settings, audit_dir: Path, state_url: str, **extra: str
) -> AuditService:
    port = free_port()
    env = audit_env(settings, audit_dir, port, STATE_URL=state_url, **extra)
    process = spawn("services.audit", **env)
    process.wait_logged("consuming")
    # The API keys follow STATE_URL too: the admin key is made in that database.
    return AuditService(process, port, audit_dir, admin_key(settings.state_dir, state_url))


def test_a_jobs_events_and_status_come_from_the_read_model_in_postgres(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    audit_dir = tmp_path / "audit"
    # A STATE_DIR nobody can write in, root included (as in a read-only container): nothing
    # is kept there with STATE_URL.
    (tmp_path / "a-file").write_text("")
    nowhere = tmp_path / "a-file" / "state"
    audit = start_audit_on(spawn, settings, audit_dir, postgres_url, STATE_DIR=str(nowhere))
    spawn("tests.support.scripted_worker").wait_logged("consuming")
    j = Job(type="resize", params={"fail_until": 2})
    broker.publish_job(j)

    record = audit.wait_for_status(j.id, "succeeded")
    assert record["attempts"] == 2
    assert [e["event"] for e in record["events"]] == [
        "job.started",
        "job.retrying",
        "job.started",
        "job.succeeded",
    ]
    assert audit.get("/stats").json()["head_seq"] == 4
    health = audit.get("/healthz")
    assert health.status_code == 200, health.text
    # The namespace's own tables: another namespace's audit may share the database.
    jobs, events = (f'"audit_{settings.namespace}_{t}"' for t in ("jobs", "events"))
    assert query(postgres_url, f"SELECT status, last_seq FROM {jobs}") == [("succeeded", 4)]
    assert not (audit_dir / "readmodel.sqlite3").exists()  # AUDIT_DIR holds the log only

    audit.process.signal(signal.SIGTERM)
    assert audit.process.wait(15) == 0
    env = service_env(
        settings, **audit_env(settings, audit_dir, audit.port, STATE_URL=postgres_url)
    )
    verified = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    query(postgres_url, f"DELETE FROM {events}")  # the model loses its events
    rebuilt = CliRunner().invoke(app, ["audit", "rebuild"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt from 4 records" in rebuilt.output

    again = start_audit_on(spawn, settings, audit_dir, postgres_url)
    assert again.job(j.id) == record
