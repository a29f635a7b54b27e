"""`jobsuite audit verify|rebuild` and `jobsuite jobs` on their own (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from services.audit.lock import DirLock
from services.audit.readmodel import DB_NAME
from services.audit.recorder import Recorder
from shared.config import Settings
from tests.support.audit import make_event, new_job_id
from tests.support.ports import free_port


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit", audit_segment_bytes=2000))
    for _ in range(4):
        job_id = new_job_id()
        recorder.record(
            [("events", make_event(e, job_id)) for e in ("job.started", "job.succeeded")]
        )
    recorder.close()
    return tmp_path / "audit"


def jobsuite(audit_dir: Path, *args: str) -> Result:
    env = {"AUDIT_DIR": str(audit_dir), "AUDIT_URL": f"http://127.0.0.1:{free_port()}"}
    return CliRunner().invoke(app, list(args), env=env)


def test_verify_reports_an_intact_log_across_segments(audit_dir: Path) -> None:
    result = jobsuite(audit_dir, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "audit log intact: 8 records in" in result.output
    assert "seq 1..8" in result.output


def test_verify_exits_1_naming_the_first_broken_record(audit_dir: Path) -> None:
    first = sorted((audit_dir / "log").iterdir())[0]
    lines = first.read_bytes().splitlines(keepends=True)
    first.write_bytes(lines[0] + b"".join(lines[2:]))

    result = jobsuite(audit_dir, "audit", "verify", str(audit_dir / "log"))
    assert result.exit_code == 1
    assert f"BROKEN at {first.name} line 2 (seq 3)" in result.output


def test_verify_catches_records_cut_off_the_end_against_the_read_model(audit_dir: Path) -> None:
    last = sorted((audit_dir / "log").iterdir())[-1]
    last.write_bytes(b"".join(last.read_bytes().splitlines(keepends=True)[:-1]))

    result = jobsuite(audit_dir, "audit", "verify")
    assert result.exit_code == 1
    assert "the log ends at seq 7 but the read model recorded up to seq 8" in result.output


def test_verify_of_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = jobsuite(tmp_path / "nowhere", "audit", "verify")
    assert result.exit_code == 2 and "no audit log at" in result.output


def test_rebuild_is_refused_while_the_folder_is_locked_and_works_after(audit_dir: Path) -> None:
    (audit_dir / DB_NAME).unlink()
    with DirLock(audit_dir):
        busy = jobsuite(audit_dir, "audit", "rebuild")
    assert busy.exit_code == 1 and "in use by another audit process" in busy.output

    done = jobsuite(audit_dir, "audit", "rebuild")
    assert done.exit_code == 0, done.output
    assert "rebuilt from 8 records" in done.output


def test_rebuild_refuses_a_broken_log(audit_dir: Path) -> None:
    first = sorted((audit_dir / "log").iterdir())[0]
    first.write_bytes(first.read_bytes().replace(b'"attempt":1', b'"attempt":2', 1))

    result = jobsuite(audit_dir, "audit", "rebuild")
    assert result.exit_code == 1 and "not rebuilding from a broken log" in result.output


def test_jobs_says_so_when_the_audit_service_is_unreachable(audit_dir: Path) -> None:
    result = jobsuite(audit_dir, "jobs")
    assert result.exit_code == 1 and "cannot reach the audit service" in result.output
