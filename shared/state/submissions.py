"""Submissions: the gateway's Idempotency-Key reservations and the jobs it accepted.

A key is reserved (with the request's fingerprint and the new job id) before the job is
published, confirmed after, released when publishing failed. When the broker may or may not
have the job (sent, never confirmed), the reservation keeps the job itself: a retry with the
same key publishes that job again, under its id, and consumers run a job id once. The same
key with the same fingerprint answers the first job id; with another fingerprint it is a
conflict. Keys expire after a day, like Stripe's. Accepted jobs (id, type, time) let
`GET /jobs/{id}` answer "submitted" before the audit service has caught up with the job.

Every gateway replica uses the same store; every call is its own short transaction, so
threads and processes may use it at once. Errors are StateError.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Protocol

from shared.state.sqlite import (
    Migration,
    executemany_unless_busy,
    open_database,
    state_errors,
    statements,
    write_transaction,
)

KEY_TTL_S = 24 * 3600
_RECORD_ACCEPTED = (
    "INSERT OR REPLACE INTO accepted_jobs (id, type, submitted_at, client, mails)"
    " VALUES (?, ?, ?, ?, ?)"
)


class Claim(Enum):
    NEW = "new"  # the key is ours: go on and publish
    REPLAY = "replay"  # the same request was accepted before: answer its job id
    CONFLICT = "conflict"  # the key was used for a different request
    IN_PROGRESS = "in_progress"  # the same request is being published right now
    IN_DOUBT = "in_doubt"  # sent before but never confirmed: publish `Reservation.job` again


@dataclass(frozen=True)
class Reservation:
    claim: Claim
    job_id: str
    job: str | None = None  # the encoded job, for IN_DOUBT


@dataclass(frozen=True)
class AcceptedJob:
    id: str
    type: str
    submitted_at: datetime
    client: str | None = None
    mails: int = 0  # the mails it and its follow-ups send


class SubmissionLedger(Protocol):
    # Whether a write waits on a server (a round trip, the server's flush): the gateway then
    # writes its batches of accepted jobs from a thread, not on its event loop.
    writes_wait_on_server: bool

    def reserve(self, key: str, fingerprint: str, job_id: str) -> Reservation:
        """Claim `key` for this request and `job_id`, or say what the key is already for.
        Keys older than KEY_TTL_S are forgotten."""
        ...

    def release(self, key: str, job_id: str) -> None:
        """Publishing failed: the key may be used again."""
        ...

    def in_doubt(self, key: str, job_id: str, job: str) -> None:
        """The job was sent but not confirmed: keep it, so the key's retry sends it again."""
        ...

    def accepted(
        self,
        job_id: str,
        job_type: str,
        submitted_at: datetime,
        key: str | None,
        client: str | None = None,
        mails: int = 0,
    ) -> None:
        """The broker confirmed the job: remember it (with its client and how many mails it
        and its follow-ups send), and finish its key's reservation."""
        ...

    def accepted_jobs(self, jobs: Sequence[AcceptedJob]) -> None:
        """Jobs without an Idempotency-Key that the broker confirmed, remembered in one
        transaction (the gateway gathers those confirmed together)."""
        ...

    def accepted_jobs_at_once(self, jobs: Sequence[AcceptedJob]) -> bool:
        """`accepted_jobs` if that needs no wait for another writer (a thread, a process):
        False, and nothing written, when one holds the store (or, as on a server, a write
        always waits). The gateway tries this on its event loop, and writes from a thread
        only what it could not."""
        ...

    def mails_since(self, client: str, since: datetime) -> int:
        """The mails of the client's jobs accepted at or after `since` (every replica writes
        here, so a per-client hourly limit holds across replicas)."""
        ...

    def find(self, job_id: str) -> AcceptedJob | None:
        """The accepted job of that id, or None."""
        ...

    def close(self) -> None: ...


def _jobs_in_doubt(db: sqlite3.Connection) -> None:
    """A reservation may keep its job (sent, never confirmed). A database from before schema
    versions were kept may have the column already."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(idempotency_keys)")}
    if "in_doubt_job" not in columns:
        db.execute("ALTER TABLE idempotency_keys ADD COLUMN in_doubt_job TEXT")


MIGRATIONS: list[Migration] = [
    statements(
        """CREATE TABLE IF NOT EXISTS idempotency_keys (
            key TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            job_id TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created)",
        """CREATE TABLE IF NOT EXISTS accepted_jobs (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            submitted_at TEXT NOT NULL
        )""",
    ),
    _jobs_in_doubt,
    statements(
        "ALTER TABLE accepted_jobs ADD COLUMN client TEXT",
        "ALTER TABLE accepted_jobs ADD COLUMN mails INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS accepted_jobs_by_client"
        " ON accepted_jobs (client, submitted_at)",
    ),
]


class SqliteSubmissionLedger:
    """The SubmissionLedger in one SQLite file (WAL, synchronous=NORMAL: a power cut may lose
    the last reservations, which only makes a key's retry publish again)."""

    writes_wait_on_server = False  # a commit is tens of microseconds, no fsync (WAL, NORMAL)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()  # one connection, shared by the request threads
        self._busy_timeout_ms = int(db.execute("PRAGMA busy_timeout").fetchone()[0])

    @classmethod
    def open(cls, path: Path) -> SqliteSubmissionLedger:
        db = open_database(
            path,
            migrations=MIGRATIONS,
            synchronous="NORMAL",
            busy_timeout_s=5,
            what="the submissions database",
        )
        return cls(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def reserve(self, key: str, fingerprint: str, job_id: str) -> Reservation:
        now = time.time()
        with self._lock, state_errors("reserve an idempotency key"), write_transaction(self._db):
            self._db.execute("DELETE FROM idempotency_keys WHERE created < ?", (now - KEY_TTL_S,))
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO idempotency_keys (key, fingerprint, job_id, created)"
                " VALUES (?, ?, ?, ?)",
                (key, fingerprint, job_id, now),
            ).rowcount
            row = self._db.execute(
                "SELECT fingerprint, job_id, done, in_doubt_job FROM idempotency_keys"
                " WHERE key = ?",
                (key,),
            ).fetchone()
        if inserted:
            return Reservation(Claim.NEW, job_id)
        earlier_fingerprint, earlier_id, done, in_doubt_job = row
        if earlier_fingerprint != fingerprint:
            return Reservation(Claim.CONFLICT, earlier_id)
        if done:
            return Reservation(Claim.REPLAY, earlier_id)
        if in_doubt_job is not None:
            return Reservation(Claim.IN_DOUBT, earlier_id, in_doubt_job)
        return Reservation(Claim.IN_PROGRESS, earlier_id)

    def release(self, key: str, job_id: str) -> None:
        with self._lock, state_errors("release an idempotency key"):
            self._db.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND job_id = ?", (key, job_id)
            )

    def in_doubt(self, key: str, job_id: str, job: str) -> None:
        with self._lock, state_errors("keep a job in doubt"):
            self._db.execute(
                "UPDATE idempotency_keys SET in_doubt_job = ? WHERE key = ? AND job_id = ?",
                (job, key, job_id),
            )

    def accepted(
        self,
        job_id: str,
        job_type: str,
        submitted_at: datetime,
        key: str | None,
        client: str | None = None,
        mails: int = 0,
    ) -> None:
        with self._lock, state_errors("record an accepted job"), write_transaction(self._db):
            self._db.execute(
                _RECORD_ACCEPTED,
                (job_id, job_type, _utc(submitted_at), client, mails),
            )
            if key is not None:
                self._db.execute(
                    "UPDATE idempotency_keys SET done = 1, in_doubt_job = NULL"
                    " WHERE key = ? AND job_id = ?",
                    (key, job_id),
                )

    def accepted_jobs(self, jobs: Sequence[AcceptedJob]) -> None:
        rows = _accepted_rows(jobs)
        with self._lock, state_errors("record accepted jobs"), write_transaction(self._db):
            self._db.executemany(_RECORD_ACCEPTED, rows)

    def accepted_jobs_at_once(self, jobs: Sequence[AcceptedJob]) -> bool:
        if not self._lock.acquire(blocking=False):  # a request thread is using the connection
            return False
        try:
            with state_errors("record accepted jobs"):
                return executemany_unless_busy(
                    self._db, self._busy_timeout_ms, _RECORD_ACCEPTED, _accepted_rows(jobs)
                )
        finally:
            self._lock.release()

    def find(self, job_id: str) -> AcceptedJob | None:
        with self._lock, state_errors("read the accepted jobs"):
            row = self._db.execute(
                "SELECT id, type, submitted_at, client, mails FROM accepted_jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return AcceptedJob(row[0], row[1], datetime.fromisoformat(row[2]), row[3], row[4])

    def mails_since(self, client: str, since: datetime) -> int:
        with self._lock, state_errors("count accepted mails"):
            (n,) = self._db.execute(
                "SELECT COALESCE(SUM(mails), 0) FROM accepted_jobs"
                " WHERE client = ? AND submitted_at >= ?",
                (client, _utc(since)),
            ).fetchone()
        return int(n)


def _accepted_rows(jobs: Sequence[AcceptedJob]) -> list[tuple[object, ...]]:
    return [(j.id, j.type, _utc(j.submitted_at), j.client, j.mails) for j in jobs]


def _utc(moment: datetime) -> str:
    """One text form (aware UTC, microseconds), so times compare correctly as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
