"""The audit log no one can quietly rewrite (issue 13, items 10 and 11), against the real
audit service on the real broker: its checkpoints catch what the hash chain alone did not,
and its /healthz says when it cannot write.

Each case runs the service, lets it record real events, stops it, tampers with its files as
someone with write access to the audit folder (and, for the last, to the state store but
not the key) would, and runs `jobsuite audit verify` with the service down.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from shared.config import Settings
from shared.state import checkpoints_path
from tests.conftest import SpawnFn
from tests.support.audit import (
    AuditService,
    audit_env,
    make_event,
    new_job_id,
    publish_event,
    start_audit,
)
from tests.support.audit_tamper import (
    drop_oldest_with_forged_anchor,
    recompute_chain,
    rewrite_checkpoints,
    truncate_newest,
)
from tests.support.broker import TestBroker
from tests.support.processes import service_env

KEY = "audit-signing-key-for-the-tests-0123456789"
EVENTS = 6


def verify(settings: Settings, audit: AuditService, key: str | None = KEY) -> Result:
    env = service_env(settings, COLUMNS="250", **audit_env(settings, audit.audit_dir, audit.port))
    env["AUDIT_SIGNING_KEY"] = key or ""
    return CliRunner().invoke(app, ["audit", "verify"], env=env)


def record_events(audit: AuditService, broker: TestBroker, count: int = EVENTS) -> list[str]:
    jobs = [new_job_id() for _ in range(count)]
    for job_id in jobs:
        publish_event(broker, make_event("job.submitted", job_id))
    for job_id in jobs:
        audit.wait_for_status(job_id, "submitted")
    return jobs


def stop(audit: AuditService) -> None:
    audit.process.signal(signal.SIGTERM)
    assert audit.process.wait(15) == 0


@pytest.fixture
def audit(spawn: SpawnFn, settings: Settings, tmp_path: Path) -> AuditService:
    # Small segments, so the log has several and the oldest can be deleted.
    return start_audit(
        spawn, settings, tmp_path / "audit", AUDIT_SIGNING_KEY=KEY, AUDIT_SEGMENT_BYTES="600"
    )


def test_an_untouched_log_verifies_against_its_signed_checkpoints(
    settings: Settings, broker: TestBroker, audit: AuditService
) -> None:
    record_events(audit, broker)
    stop(audit)
    result = verify(settings, audit)
    assert result.exit_code == 0, result.output
    assert f"audit log intact: {EVENTS} records" in result.output


def test_newest_records_cut_off_with_the_read_model_deleted_are_found(
    spawn: SpawnFn, settings: Settings, broker: TestBroker, audit: AuditService
) -> None:
    record_events(audit, broker)
    stop(audit)
    truncate_newest(audit.audit_dir / "log", 2)
    (audit.audit_dir / "readmodel.sqlite3").unlink()

    result = verify(settings, audit, key=None)
    assert result.exit_code == 1, result.output
    assert f"audit log TRUNCATED: the log ends at seq {EVENTS - 2} but checkpoint" in result.output
    assert f"records {EVENTS - 1}..{EVENTS} were removed from its end" in result.output

    # Nor does the service write on after the cut.
    again = spawn("services.audit", **audit_env(settings, audit.audit_dir, audit.port))
    assert again.wait(30) == 1
    (refusal,) = again.logged("audit_log_disagrees_with_checkpoints")
    assert "records were removed from its end" in refusal["error"]


def test_a_deleted_oldest_segment_with_a_forged_anchor_is_found(
    settings: Settings, broker: TestBroker, audit: AuditService
) -> None:
    record_events(audit, broker)
    stop(audit)
    log_dir = audit.audit_dir / "log"
    assert len(list(log_dir.glob("segment-*"))) > 1
    start = drop_oldest_with_forged_anchor(log_dir)

    result = verify(settings, audit, key=None)
    assert result.exit_code == 1, result.output
    assert f"audit log ANCHOR: the log starts after seq {start} (anchor.json)" in result.output
    assert "anchor.json was not written by the service" in result.output


def test_a_chain_recomputed_from_scratch_is_found_with_the_key(
    settings: Settings, broker: TestBroker, audit: AuditService
) -> None:
    record_events(audit, broker)
    stop(audit)
    hashes = recompute_chain(audit.audit_dir / "log", lambda e: {**e, "type": "render"})

    # The checkpoints left alone betray it, key or not.
    left_alone = verify(settings, audit, key=None)
    assert left_alone.exit_code == 1
    assert "audit log REWRITTEN: the record at seq " in left_alone.output
    assert "the chain was rewritten at or before seq" in left_alone.output

    # Rewritten with the chain by someone without the key: the signatures betray it.
    rewrite_checkpoints(checkpoints_path(settings), hashes)
    signed = verify(settings, audit)
    assert signed.exit_code == 1
    assert "audit log SIGNATURE:" in signed.output
    assert "the checkpoint store was edited" in signed.output

    # Without the key nothing can: the documented limit (docs/operations.md).
    unsigned = verify(settings, audit, key=None)
    assert unsigned.exit_code == 0, unsigned.output
    assert "set AUDIT_SIGNING_KEY to check them" in unsigned.output


# --- /healthz when the audit cannot write ---------------------------------------------


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only for the running service. chmod does not stop root, so as root a
    read-only bind mount over it (needs CAP_SYS_ADMIN; otherwise the case is skipped)."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root cannot make {folder} read-only here: {mounted.stderr.decode()}")
    try:
        remount = ["mount", "-o", "remount,ro,bind", str(folder)]
        subprocess.run(remount, check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def healthz(audit: AuditService) -> tuple[int, dict]:
    """The probe runs at most once a second: a change shows within that."""
    response = audit.get("/healthz")
    return response.status_code, response.json()


def test_healthz_is_stalled_while_the_audit_folder_is_read_only_and_nothing_is_acked(
    spawn: SpawnFn, settings: Settings, broker: TestBroker, tmp_path: Path
) -> None:
    # A segment per batch: every batch must create a file, which a read-only folder refuses.
    audit = start_audit(spawn, settings, tmp_path / "audit", AUDIT_SEGMENT_BYTES="1")
    record_events(audit, broker, 1)
    assert healthz(audit)[0] == 200

    late = new_job_id()
    with read_only(audit.audit_dir):
        audit.wait_for(lambda: healthz(audit)[0] == 503, "healthz stalled", timeout=5)
        status, body = healthz(audit)
        assert status == 503
        assert body["status"] == "stalled"
        assert f"cannot write to {audit.audit_dir / 'log'}" in body["reason"]
        publish_event(broker, make_event("job.submitted", late))
        audit.process.wait_logged("recording_failed")
        assert audit.job(late) is None
        status, body = healthz(audit)
        assert status == 503 and body["status"] == "stalled", body

    # Writable again: the event that was not acked is redelivered and recorded.
    audit.wait_for_status(late, "submitted")
    audit.wait_for(lambda: healthz(audit)[0] == 200, "healthz ok again")
    assert healthz(audit)[1]["status"] == "ok"


def test_healthz_is_stalled_while_the_checkpoint_store_cannot_be_written(
    settings: Settings, broker: TestBroker, audit: AuditService
) -> None:
    record_events(audit, broker, 1)
    with read_only(settings.state_dir):
        audit.wait_for(lambda: healthz(audit)[0] == 503, "healthz stalled", timeout=5)
        status, body = healthz(audit)
        assert status == 503
        assert body == {
            "status": "stalled",
            "consuming": True,
            "head_seq": 1,
            "reason": body["reason"],
        }
        assert body["reason"].startswith(f"cannot write to {settings.state_dir}")
    audit.wait_for(lambda: healthz(audit)[0] == 200, "healthz ok again")


def test_a_log_without_checkpoints_is_flagged_then_adopted_at_the_next_start(
    spawn: SpawnFn, settings: Settings, broker: TestBroker, audit: AuditService
) -> None:
    record_events(audit, broker)
    stop(audit)
    checkpoints_path(settings).unlink()  # as a log from before checkpoints

    unprotected = verify(settings, audit, key=None)
    assert unprotected.exit_code == 0, unprotected.output
    assert "warning: no checkpoint of this log in the state store" in unprotected.output
    assert verify(settings, audit).exit_code == 1  # with the key: MISSING

    again = start_audit(spawn, settings, audit.audit_dir, AUDIT_SIGNING_KEY=KEY)
    (adopted,) = again.process.logged("audit_log_adopted")
    assert adopted["head_seq"] == EVENTS
    stop(again)
    result = verify(settings, again)
    assert result.exit_code == 0, result.output
    assert f"records up to seq {EVENTS} were written before checkpoints" in result.output
