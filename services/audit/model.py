"""The read model's one door: which backend holds it (STATE_URL: empty, a SQLite file in
AUDIT_DIR; `postgresql://…`, tables in that database) is decided here and nowhere else.
Everything else holds a `ReadModelWriter` or a `ReadModelReader` and cannot tell which.
PostgreSQL's modules are imported only when STATE_URL asks for them (psycopg stays unloaded
otherwise, as in `shared.state`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from services.audit.chain import Record
from services.audit.queries import Queries
from services.audit.readmodel import DB_NAME, ReadModel
from services.audit.readmodel import rebuild as sqlite_rebuild
from services.audit.readmodel import recorded_head as sqlite_head
from shared.config import Settings
from shared.messages import JobRecord


class ReadModelWriter(Protocol):
    """Events in, jobs folded from them; one thread only (the consumer's)."""

    head_seq: int

    def known_event_ids(self, event_ids: Sequence[str]) -> set[str]: ...

    def apply(self, records: Sequence[Record]) -> None: ...

    def prune(self, before: datetime) -> int: ...

    def close(self) -> None: ...


class ReadModelReader(Protocol):
    """The API's questions; any thread."""

    def job(self, job_id: str) -> JobRecord | None: ...

    def jobs(
        self,
        *,
        status: str | None,
        job_type: str | None,
        since: datetime | None,
        limit: int,
        before: int | None,
        client: str | None = None,
        id_prefix: str | None = None,
    ) -> tuple[list[JobRecord], int | None]: ...

    def follow_ups(self, job_id: str) -> list[JobRecord]: ...

    def clients(self) -> list[str]: ...

    def job_types(self) -> list[str]: ...

    def workers(self, limit_events: int = 50_000) -> list[dict[str, Any]]: ...

    def rates(self, since: datetime, limit_events: int = 50_000) -> dict[str, dict[str, int]]: ...

    def events(self, since: int, limit: int) -> list[dict[str, Any]]: ...

    def stats(self) -> dict[str, Any]: ...

    def head_seq(self) -> int: ...

    def close(self) -> None: ...


def sqlite_path(settings: Settings) -> Path:
    return settings.audit_dir / DB_NAME


def open_read_model(settings: Settings) -> ReadModelWriter:
    """The writer; StateError (PostgreSQL) or sqlite3.Error when it cannot be opened."""
    if settings.state_url:
        from services.audit.readmodel_pg import PostgresReadModel

        return PostgresReadModel.open(settings.state_url, settings.namespace)
    return ReadModel(sqlite_path(settings))


def open_queries(settings: Settings) -> ReadModelReader:
    """The reader; StateError when PostgreSQL cannot be reached (a SQLite file is opened by
    each thread's first query)."""
    if settings.state_url:
        from services.audit.queries_pg import PostgresQueries

        return PostgresQueries.open(settings.state_url, settings.namespace)
    return Queries(sqlite_path(settings))


def recorded_head(settings: Settings, folder: Path | None = None) -> int | None:
    """The last seq the read model has applied, or None without one. Without STATE_URL the
    file is looked for in `folder` (an audit folder, or its `log/`; default AUDIT_DIR)."""
    if settings.state_url:
        from services.audit.readmodel_pg import recorded_head as pg_head

        return pg_head(settings.state_url, settings.namespace)
    folder = folder or settings.audit_dir
    db = folder / DB_NAME if (folder / DB_NAME).exists() else folder.parent / DB_NAME
    return sqlite_head(db)


def rebuild_read_model(settings: Settings, fill: Callable[[ReadModelWriter], int]) -> int:
    """`fill` a fresh read model, then put it in place of the old one at once (readers see
    one or the other, never half of one); returns what `fill` returns."""
    if settings.state_url:
        from services.audit.readmodel_pg import rebuild as pg_rebuild

        return pg_rebuild(settings.state_url, settings.namespace, fill)
    return sqlite_rebuild(sqlite_path(settings), fill)
