"""What the two read-model backends (SQLite, PostgreSQL) share below the SQL: a `Sql` to run
statements on, and a `Dialect` naming what differs between them in that SQL.

The writer (`model_writer.py`) and the reader (`model_reader.py`) are written once against
these; a statement uses `?` for its parameters (the PostgreSQL `Sql` turns them into `%s`)
and takes its table names and JSON lookups from the dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.audit.chain import Record
from services.audit.lifecycle import as_utc

# A row by column name: sqlite3.Row, or psycopg's dict_row.
Row = Mapping[str, Any]


class Sql(Protocol):
    """One connection (or a transaction on one) of either backend."""

    def rows(self, statement: str, args: Sequence[object] = ()) -> Sequence[Row]: ...

    def execute(self, statement: str, args: Sequence[object] = ()) -> int:
        """Run a statement; the rows it changed."""
        ...


@dataclass(frozen=True)
class Dialect:
    """The names and expressions the two backends spell differently."""

    events: str
    jobs: str
    meta: str
    # A text field of an event's JSON `body`, `{}` for its name; SQL NULL when absent.
    json_text: str

    def field(self, name: str) -> str:
        return self.json_text.format(name)


SQLITE = Dialect("events", "jobs", "meta", "json_extract(body, '$.{}')")


def timestamp(moment: datetime) -> str:
    """One fixed text form for times, so both backends compare them correctly as strings."""
    return as_utc(moment).isoformat(timespec="microseconds")


def head_of(db: Sql, dialect: Dialect) -> int | None:
    """The last seq applied, per the meta table; None when none was recorded."""
    rows = db.rows(f"SELECT value FROM {dialect.meta} WHERE key = 'head_seq'")
    return int(rows[0]["value"]) if rows else None


def iter_chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
