"""The SQLite read model (WAL): an `events` table in log order and a `jobs` table folded from it.

One writer (the consumer thread) owns `ReadModel`; API threads read through `Queries`, each
with its own connection (WAL lets them read while the writer writes). The log is the source
of truth: this file can be deleted and rebuilt from it at any time.

An event's `body` is a `RecordedEvent`: the event with the record's `publisher` and
`refused` marks. Refused events are listed with their job but never folded into its status;
a job only refused events speak of has no row in `jobs`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from services.audit.chain import Record
from services.audit.lifecycle import JobState, as_utc, fold
from shared.messages import Event, RecordedEvent

DB_NAME = "readmodel.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    type TEXT NOT NULL,
    at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    parent_id TEXT,
    submitted_at TEXT,
    started_at TEXT,
    finished_at TEXT,
    duration_ms REAL,
    error_kind TEXT,
    error_message TEXT,
    dead_reason TEXT,
    replays INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    client TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_first_seq ON jobs (first_seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, first_seq);
CREATE INDEX IF NOT EXISTS jobs_by_type ON jobs (type, first_seq);
CREATE INDEX IF NOT EXISTS jobs_by_updated ON jobs (updated_at);
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_JOB_COLUMNS = (
    "id, type, status, attempts, parent_id, submitted_at, started_at, finished_at, duration_ms,"
    " error_kind, error_message, dead_reason, replays, outputs, first_seq, last_seq, updated_at,"
    " client"
)


def timestamp(moment: datetime) -> str:
    """One fixed text form for times, so SQLite compares them correctly as strings."""
    return as_utc(moment).isoformat(timespec="microseconds")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 10000")
    if readonly:
        db.execute("PRAGMA query_only = 1")
    else:
        db.execute("PRAGMA journal_mode = WAL")
        # The log is fsynced and the model can be rebuilt from it: no need to fsync here too.
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        _add_client_column(db)
        _rejections_apart(db)
    return db


def _add_client_column(db: sqlite3.Connection) -> None:
    """A read model written before jobs had a client gets the column (its rows stay NULL:
    admin-only, until the read model is rebuilt from the log)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if "client" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN client TEXT")


def _rejections_apart(db: sqlite3.Connection) -> None:
    """A read model folded before refused submissions had a status of their own shows them
    as `failed`: a job row all of whose events are `job.rejected` is `rejected` (what a
    rebuild from the log gives). Idempotent; each failed row is looked up by its index."""
    db.execute(
        "UPDATE jobs SET status = 'rejected' WHERE status = 'failed'"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.job_id = jobs.id"
        " AND e.event != 'job.rejected')"
    )


def recorded_head(path: Path) -> int | None:
    """The last seq the read model at `path` has applied, or None without a read model."""
    if not path.is_file():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'head_seq'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return int(row[0]) if row else 0


class ReadModel:
    """The writer side; used by one thread only."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = connect(path)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'head_seq'").fetchone()
        self.head_seq = int(row[0]) if row else 0

    def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(event_ids), 500):  # stay under SQLite's variable limit
            chunk = event_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    def apply(self, records: Sequence[Record]) -> None:
        """Add records (in seq order) and refold every job they touch, in one transaction."""
        if not records:
            return
        with self._transaction():
            touched: dict[str, None] = {}
            for r in records:
                event = Event.model_validate(r.event)
                self.db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.seq,
                        event.event_id,
                        event.job_id,
                        event.event,
                        event.type,
                        timestamp(event.at),
                        r.recorded_at,
                        json.dumps({**r.event, **r.marks.fields()}),
                    ),
                )
                if not event.about_key:  # key events are in the log, not job rows
                    touched[event.job_id] = None
            for job_id in touched:
                self._refold(job_id)
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('head_seq', ?)", (str(records[-1].seq),)
            )
        self.head_seq = records[-1].seq

    def _refold(self, job_id: str) -> None:
        rows = self.db.execute(
            "SELECT seq, recorded_at, body FROM events WHERE job_id = ? ORDER BY seq", (job_id,)
        ).fetchall()
        events = [RecordedEvent.model_validate_json(r["body"]) for r in rows]
        believed = [e for e in events if not e.refused]
        if not believed:
            return
        state = fold(job_id, believed)
        self.db.execute(
            f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})",
            (
                *_job_values(state),
                rows[0]["seq"],
                rows[-1]["seq"],
                rows[-1]["recorded_at"],
                state.client,
            ),
        )

    def prune(self, before: datetime) -> int:
        """Delete jobs (and their events) whose last event was recorded before `before`."""
        cutoff = timestamp(before)
        with self._transaction():
            self.db.execute(
                "DELETE FROM events WHERE job_id IN (SELECT id FROM jobs WHERE updated_at < ?)",
                (cutoff,),
            )
            return self.db.execute("DELETE FROM jobs WHERE updated_at < ?", (cutoff,)).rowcount

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _job_values(state: JobState) -> tuple[object, ...]:
    def when(moment: datetime | None) -> str | None:
        return timestamp(moment) if moment else None

    return (
        state.id,
        state.type,
        state.status,
        state.attempts,
        state.parent_id,
        when(state.submitted_at),
        when(state.started_at),
        when(state.finished_at),
        state.duration_ms,
        state.error.kind if state.error else None,
        state.error.message if state.error else None,
        state.dead_reason,
        state.replays,
        json.dumps(state.outputs),
    )


def iter_chunks(records: Iterable[Record], size: int) -> Iterable[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
