"""BLOB_RETENTION_DAYS: delete the blobs of jobs older than the cutoff (pure over BlobStore).

A job's blobs are `inputs/<id>/…` and `outputs/<id>/…`; its age is that of its newest blob
(`BlobStore.list_modified`), so a job goes only once every blob it has, inputs and outputs
alike, is older than the cutoff: a job still in flight has written (or been given) a blob
since, and is kept. The audit's record of the job stays; its result is then a 410.

Run by the gateway (`run_periodically`: once at start, then every hour) and by `jobsuite
blobs prune`. Several replicas pruning at once is harmless: deleting what another replica
deleted already is a no-op. An S3 bucket can do the same with a lifecycle rule
(docs/operations.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.blobs.store import BlobStore
from shared.errors import BlobError
from shared.log import get_logger

log = get_logger(__name__)
AREAS = ("inputs", "outputs")
EVERY_S = 3600.0


@dataclass(frozen=True)
class Expired:
    job_id: str
    newest: datetime  # its newest blob
    blobs: int


def cutoff_of(days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=days)


def expired_jobs(blobs: BlobStore, cutoff: datetime) -> list[Expired]:
    """The jobs whose every blob (inputs and outputs) was last written before `cutoff`."""
    newest: dict[str, datetime] = {}
    counts: dict[str, int] = {}
    for area in AREAS:
        for key, at in blobs.list_modified(area):
            parts = key.split("/")
            if len(parts) < 3:
                continue  # a blob directly under the area belongs to no job
            job_id = parts[1]
            newest[job_id] = max(newest.get(job_id, at), at)
            counts[job_id] = counts.get(job_id, 0) + 1
    return [
        Expired(job_id, at, counts[job_id]) for job_id, at in sorted(newest.items()) if at < cutoff
    ]


def prune(blobs: BlobStore, cutoff: datetime, *, dry_run: bool = False) -> list[Expired]:
    """Delete the blobs of every job `expired_jobs` names (none when `dry_run`); return them.
    Its outputs go before its inputs."""
    found = expired_jobs(blobs, cutoff)
    if dry_run:
        return found
    for job in found:
        for area in reversed(AREAS):  # outputs (and the manifest) first
            blobs.delete_prefix(f"{area}/{job.job_id}")
        log.info("job_blobs_expired", job_id=job.job_id, blobs=job.blobs, newest=job.newest)
    return found


def run_periodically(
    blobs: BlobStore,
    days: int,
    stop: threading.Event,
    *,
    every_s: float = EVERY_S,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Prune now, then every `every_s` until `stop` is set (the body of a daemon thread);
    a store that fails is logged and tried again next time."""
    while True:
        try:
            pruned = prune(blobs, cutoff_of(days, clock()))
            if pruned:
                log.info("blob_retention_pruned", jobs=len(pruned), days=days)
        except (OSError, BlobError) as e:
            log.warning("blob_retention_failed", error=str(e))
        if stop.wait(every_s):
            return


def start_janitor(blobs: BlobStore, days: int) -> Callable[[], None]:
    """The janitor thread when `days` is set (0: keep forever, no thread); returns its stop."""
    stop = threading.Event()
    if days <= 0:
        return stop.set
    thread = threading.Thread(
        target=run_periodically, args=(blobs, days, stop), name="blob-janitor", daemon=True
    )
    thread.start()

    def stop_it() -> None:
        stop.set()
        thread.join(timeout=5)

    return stop_it
