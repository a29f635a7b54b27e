"""The read model in PostgreSQL (STATE_URL=postgresql://…): the writer, its schema and its
rebuild. What the writer does is `model_writer.py`'s, the same as SQLite's.

The tables are the audit log's own: `audit_events`, `audit_jobs`, `audit_meta`, or with
JOBSUITE_NAMESPACE `audit_<namespace>_events` and so on, as each namespace has a log of its
own and may share the database. Times are text in one fixed form, compared byte by byte
(`COLLATE "C"`), as SQLite compares them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace

import psycopg
from psycopg.rows import dict_row

from services.audit.model_sql import Dialect, Row
from services.audit.model_writer import SqlReadModel
from shared.errors import StateError
from shared.state.postgres import PgMigration, Pool, open_pool, pg_statements

WHAT = "the audit read model"
# The body is the event's JSON as text (what the API hands back, byte for byte); `->>` gives
# SQL NULL for a missing field, as SQLite's json_extract does.
_JSON_TEXT = "(body::jsonb ->> '{}')"
_MAX_NAMESPACE_BYTES = 32  # PostgreSQL cuts names at 63 bytes: room for the rest of each


@dataclass(frozen=True)
class PgTables:
    """The table names of one audit log's read model: `prefix` + events, jobs or meta +
    `suffix` (a rebuild's scratch tables only)."""

    prefix: str
    suffix: str = ""

    @classmethod
    def of(cls, namespace: str) -> PgTables:
        if len(namespace.encode()) > _MAX_NAMESPACE_BYTES:
            digest = hashlib.sha256(namespace.encode()).hexdigest()[:12]
            namespace = f"{namespace.encode()[:16].decode(errors='ignore')}_{digest}"
        return cls(f"audit_{namespace}_" if namespace else "audit_")

    def name(self, table: str) -> str:
        return f"{self.prefix}{table}{self.suffix}"

    def dialect(self) -> Dialect:
        events, jobs, meta = (_quote(self.name(t)) for t in ("events", "jobs", "meta"))
        return Dialect(events, jobs, meta, _JSON_TEXT)

    def store(self) -> str:
        """Its row in `jobsuite_schema`."""
        return f"{self.prefix}read_model"

    def scratch(self) -> PgTables:
        """Where a rebuild builds. A live table's name ends in events, jobs or meta whatever
        the namespace, so no namespace's live table can be named as this scratch one."""
        return replace(self, suffix="_rebuild")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def migrations(tables: PgTables) -> list[PgMigration]:
    d = tables.dialect()

    def index(name: str) -> str:  # named after the table, as tables are per namespace
        return _quote(f"{tables.prefix}{name}")

    return [
        pg_statements(
            f"""CREATE TABLE IF NOT EXISTS {d.events} (
                seq         BIGINT PRIMARY KEY,
                event_id    TEXT NOT NULL UNIQUE,
                job_id      TEXT NOT NULL,
                event       TEXT NOT NULL,
                type        TEXT NOT NULL,
                at          TEXT COLLATE "C" NOT NULL,
                recorded_at TEXT COLLATE "C" NOT NULL,
                body        TEXT NOT NULL
            )""",
            f"CREATE INDEX IF NOT EXISTS {index('events_by_job')} ON {d.events} (job_id, seq)",
            f"""CREATE TABLE IF NOT EXISTS {d.jobs} (
                id            TEXT PRIMARY KEY,
                type          TEXT NOT NULL,
                status        TEXT NOT NULL,
                attempts      INTEGER NOT NULL,
                parent_id     TEXT,
                submitted_at  TEXT COLLATE "C",
                started_at    TEXT COLLATE "C",
                finished_at   TEXT COLLATE "C",
                duration_ms   DOUBLE PRECISION,
                error_kind    TEXT,
                error_message TEXT,
                dead_reason   TEXT,
                replays       INTEGER NOT NULL DEFAULT 0,
                outputs       TEXT NOT NULL,
                first_seq     BIGINT NOT NULL,
                last_seq      BIGINT NOT NULL,
                updated_at    TEXT COLLATE "C" NOT NULL,
                client        TEXT
            )""",
            f"CREATE INDEX IF NOT EXISTS {index('jobs_by_first_seq')} ON {d.jobs} (first_seq)",
            f"CREATE INDEX IF NOT EXISTS {index('jobs_by_status')} ON {d.jobs} (status, first_seq)",
            f"CREATE INDEX IF NOT EXISTS {index('jobs_by_type')} ON {d.jobs} (type, first_seq)",
            f"CREATE INDEX IF NOT EXISTS {index('jobs_by_updated')} ON {d.jobs} (updated_at)",
            f"CREATE INDEX IF NOT EXISTS {index('jobs_by_parent')} ON {d.jobs} (parent_id)",
            f"CREATE TABLE IF NOT EXISTS {d.meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ]


def open_model_pool(url: str, tables: PgTables) -> Pool:
    return open_pool(url, migrations=migrations(tables), store=tables.store(), what=WHAT)


class PgSql:
    """`Sql` on a psycopg connection: `?` parameters as psycopg's `%s`."""

    def __init__(self, db: psycopg.Connection) -> None:
        self.db = db

    def rows(self, statement: str, args: Sequence[object] = ()) -> Sequence[Row]:
        with self.db.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(_pg(statement), args).fetchall()

    def execute(self, statement: str, args: Sequence[object] = ()) -> int:
        return self.db.execute(_pg(statement), args).rowcount


def _pg(statement: str) -> str:
    # The shared statements hold no `%` and no `?` but their parameters' (no jsonb `?`).
    return statement.replace("?", "%s")


class PoolSql:
    """A pool's transaction as a context manager of `Sql` (errors as StateError)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @contextmanager
    def __call__(self, doing: str) -> Iterator[PgSql]:
        with self.pool.transaction(doing) as db:
            yield PgSql(db)


class PostgresReadModel(SqlReadModel):
    """The writer side in PostgreSQL; one transaction per `apply` or `prune`."""

    def __init__(self, pool: Pool, tables: PgTables, *, owns_pool: bool = True) -> None:
        self._sql = PoolSql(pool)
        self._owns_pool = owns_pool
        self.tables = tables
        super().__init__(tables.dialect())

    @classmethod
    def open(cls, url: str, namespace: str) -> PostgresReadModel:
        tables = PgTables.of(namespace)
        return cls(open_model_pool(url, tables), tables)

    def _transaction(self) -> AbstractContextManager[PgSql]:
        return self._sql("write the audit read model")

    def _reading(self) -> AbstractContextManager[PgSql]:
        return self._sql("read the audit read model")

    def close(self) -> None:
        if self._owns_pool:
            self._sql.pool.close()


def recorded_head(url: str, namespace: str) -> int:
    """The last seq the read model has applied (0 for none); StateError when unreachable."""
    tables = PgTables.of(namespace)
    model = PostgresReadModel(open_model_pool(url, tables), tables)
    try:
        return model.head_seq
    finally:
        model.close()


def rebuild(url: str, namespace: str, fill: Callable[[PostgresReadModel], int]) -> int:
    """A fresh read model `fill`ed into scratch tables, then copied over the live ones in one
    transaction: readers see the old model until it commits, then the new one, never a
    half-built one. Returns what `fill` returns."""
    live = PgTables.of(namespace)
    scratch = live.scratch()
    pool = open_model_pool(url, live)
    sql = PoolSql(pool)
    pairs = [(live.name(t), scratch.name(t)) for t in ("events", "jobs", "meta")]
    try:
        with sql("prepare the read model's rebuild") as db:
            for table, spare in pairs:  # a crashed rebuild's leftovers go first
                db.execute(f"DROP TABLE IF EXISTS {_quote(spare)}")
                db.execute(f"CREATE TABLE {_quote(spare)} (LIKE {_quote(table)} INCLUDING ALL)")
        count = fill(PostgresReadModel(pool, scratch, owns_pool=False))
        with sql("swap in the rebuilt read model") as db:
            for table, spare in pairs:
                db.execute(f"DELETE FROM {_quote(table)}")
                db.execute(f"INSERT INTO {_quote(table)} SELECT * FROM {_quote(spare)}")
                db.execute(f"DROP TABLE {_quote(spare)}")
        return count
    except BaseException:
        try:
            with sql("drop the rebuild's scratch tables") as db:
                for _table, spare in pairs:
                    db.execute(f"DROP TABLE IF EXISTS {_quote(spare)}")
        except StateError:
            pass  # the next rebuild drops them: the error that matters is the one above
        raise
    finally:
        pool.close()
