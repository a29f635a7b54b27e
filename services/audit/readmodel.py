"""The SQLite read model (WAL), in AUDIT_DIR: the writer's connection, schema and rebuild.

One writer (the consumer thread) owns `ReadModel`; API threads read through `Queries`, each
with its own connection (WAL lets them read while the writer writes). The log is the source
of truth: this file can be deleted and rebuilt from it at any time. What the writer does is
`model_writer.py`'s, the same for PostgreSQL (`readmodel_pg.py`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import cast

from services.audit.model_sql import SQLITE, Row
from services.audit.model_writer import SqlReadModel

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


class SqliteSql:
    """`Sql` on a SQLite connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def rows(self, statement: str, args: Sequence[object] = ()) -> Sequence[Row]:
        return cast(list[Row], self.db.execute(statement, args).fetchall())

    def execute(self, statement: str, args: Sequence[object] = ()) -> int:
        return self.db.execute(statement, args).rowcount


class ReadModel(SqlReadModel):
    """The writer side in the SQLite file at `path`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = connect(path)
        super().__init__(SQLITE)

    @contextmanager
    def _transaction(self) -> Iterator[SqliteSql]:
        # IMMEDIATE: the write lock at once, so readers never make this transaction fail.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteSql(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _reading(self) -> nullcontext[SqliteSql]:
        return nullcontext(SqliteSql(self.db))

    def close(self) -> None:
        self.db.close()


def rebuild(path: Path, fill: Callable[[ReadModel], int]) -> int:
    """A fresh read model `fill`ed beside `path`, then renamed over it; what `fill` returns."""
    scratch = path.with_name(f".{path.name}.rebuild-{os.getpid()}-{int(time.time())}")
    model = ReadModel(scratch)
    try:
        count = fill(model)
    except BaseException:
        model.close()
        _remove_db(scratch)
        raise
    # Everything into the one file, so that renaming it moves the whole database.
    model.db.execute("PRAGMA journal_mode = DELETE")
    model.close()
    _remove_db(path)
    os.replace(scratch, path)
    return count


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
