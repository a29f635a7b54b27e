"""BLOB_RETENTION_DAYS: the janitor deletes the blobs of jobs older than the cutoff and keeps
the rest, in the folder store and on S3 alike (`any_blob_store`)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.blobs import BlobStore, FolderBlobStore, input_key, output_key
from shared.blobs.janitor import cutoff_of, expired_jobs, prune, run_periodically


def stored_job(blobs: BlobStore, *, inputs: bool = True, outputs: bool = True) -> str:
    job_id = str(uuid.uuid4())
    if inputs:
        blobs.write_bytes(input_key(job_id, "photo.png"), b"in")
    if outputs:
        key = blobs.write_bytes(output_key(job_id, "photo-100.png"), b"out")
        blobs.write_manifest(job_id, [key], "ann")
    return job_id


def blobs_of(blobs: BlobStore, job_id: str) -> list[str]:
    return blobs.list(f"inputs/{job_id}") + blobs.list(f"outputs/{job_id}")


def a_moment_between() -> datetime:
    """A cutoff strictly between blobs written before and after it (S3 times are whole
    seconds, so more than a second apart on each side)."""
    time.sleep(1.1)
    moment = datetime.now(UTC)
    time.sleep(1.1)
    return moment


def test_jobs_older_than_the_cutoff_lose_their_blobs_and_newer_ones_keep_them(
    any_blob_store: BlobStore,
) -> None:
    old = stored_job(any_blob_store)
    old_inputs_only = stored_job(any_blob_store, outputs=False)
    in_flight = stored_job(any_blob_store, outputs=False)  # given its inputs long ago…
    cutoff = a_moment_between()
    new = stored_job(any_blob_store)
    any_blob_store.write_bytes(output_key(in_flight, "photo-100.png"), b"out")  # …working now

    pruned = prune(any_blob_store, cutoff)

    assert sorted(job.job_id for job in pruned) == sorted([old, old_inputs_only])
    assert {job.job_id: job.blobs for job in pruned} == {old: 3, old_inputs_only: 1}
    assert blobs_of(any_blob_store, old) == blobs_of(any_blob_store, old_inputs_only) == []
    assert len(blobs_of(any_blob_store, new)) == 3
    assert len(blobs_of(any_blob_store, in_flight)) == 2
    assert any_blob_store.read_manifest(new) is not None
    assert prune(any_blob_store, cutoff) == []  # again (another replica): nothing left to do


def test_a_dry_run_names_the_jobs_and_deletes_nothing(any_blob_store: BlobStore) -> None:
    old = stored_job(any_blob_store)
    cutoff = a_moment_between()

    named = prune(any_blob_store, cutoff, dry_run=True)

    assert [job.job_id for job in named] == [old]
    assert len(blobs_of(any_blob_store, old)) == 3


def test_the_blob_times_the_stores_report_are_utc_and_recent(any_blob_store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    job_id = stored_job(any_blob_store)

    found = any_blob_store.list_modified(f"outputs/{job_id}")

    assert [key for key, _at in found] == any_blob_store.list(f"outputs/{job_id}")
    assert all(at.tzinfo is not None and before <= at <= datetime.now(UTC) for _k, at in found)


def age_days(root: Path, job_id: str, days: int) -> None:
    """Make every file of the job `days` old, as if written then."""
    then = time.time() - days * 86400
    for area in ("inputs", "outputs"):
        for path in (root / area / job_id).rglob("*"):
            os.utime(path, (then, then))


def test_a_folder_job_older_than_the_retention_days_goes(tmp_path: Path) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")
    ten_days, three_days, outputs_new = stored_job(blobs), stored_job(blobs), stored_job(blobs)
    age_days(tmp_path / "blobs", ten_days, 10)
    age_days(tmp_path / "blobs", three_days, 3)
    age_days(tmp_path / "blobs", outputs_new, 10)
    blobs.write_bytes(output_key(outputs_new, "late.png"), b"written today")

    expired = expired_jobs(blobs, cutoff_of(7))

    assert [job.job_id for job in expired] == [ten_days]
    assert expired[0].newest < datetime.now(UTC) - timedelta(days=9)


def test_the_periodic_janitor_prunes_at_once_and_stops_when_told(tmp_path: Path) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")
    old = stored_job(blobs)
    age_days(tmp_path / "blobs", old, 10)
    stop = threading.Event()
    stop.set()  # one round, then it returns

    run_periodically(blobs, 7, stop, every_s=3600)

    assert blobs_of(blobs, old) == []


def test_blobs_prune_deletes_old_jobs_and_a_dry_run_only_names_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    blobs = FolderBlobStore(tmp_path / "blobs")
    old, new = stored_job(blobs), stored_job(blobs)
    age_days(tmp_path / "blobs", old, 10)
    env = {"BLOB_DIR": str(tmp_path / "blobs"), "COLUMNS": "200", "NO_COLOR": "1"}

    dry = CliRunner().invoke(app, ["blobs", "prune", "--days", "7", "--dry-run"], env=env)
    kept = blobs_of(blobs, old)
    done = CliRunner().invoke(app, ["blobs", "prune", "--days", "7"], env=env)
    unset = CliRunner().invoke(app, ["blobs", "prune"], env=env)

    assert dry.exit_code == 0, dry.output
    assert old in dry.output and new not in dry.output
    assert "would delete the blobs of 1 job older than 7 days" in dry.output
    assert len(kept) == 3
    assert done.exit_code == 0, done.output
    assert "deleted the blobs of 1 job older than 7 days" in done.output
    assert blobs_of(blobs, old) == [] and len(blobs_of(blobs, new)) == 3
    assert unset.exit_code == 1
    assert "BLOB_RETENTION_DAYS is unset" in unset.output
