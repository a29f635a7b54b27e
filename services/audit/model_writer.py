"""The read model's writer, once for both backends: events in, jobs folded from them.

An event's `body` is a `RecordedEvent`: the event with the record's `publisher` and
`refused` marks. Refused events are listed with their job but never folded into its status;
a job only refused events speak of has no row in `jobs`. Subclasses give the connection
(`_transaction`, `_reading`) and the dialect; the SQL here is the same on both.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from services.audit.chain import Record
from services.audit.lifecycle import JobState, fold
from services.audit.model_sql import Dialect, Sql, head_of, timestamp
from shared.messages import Event, RecordedEvent

JOB_COLUMNS = (
    "id", "type", "status", "attempts", "parent_id", "submitted_at", "started_at",
    "finished_at", "duration_ms", "error_kind", "error_message", "dead_reason", "replays",
    "outputs", "first_seq", "last_seq", "updated_at", "client",
)  # fmt: skip
_EVENT_COLUMNS = "seq, event_id, job_id, event, type, at, recorded_at, body"
# A refold replaces the job's row: every column but the key from the new values.
_UPSERT_JOB = (
    f"({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS if c != "id")
)
_IN_CHUNK = 500  # stay under SQLite's variable limit


class SqlReadModel(ABC):
    """The writer side; used by one thread only."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        with self._reading() as db:
            self.head_seq = head_of(db, dialect) or 0

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Sql]:
        """A write transaction: committed when the block ends cleanly, else rolled back."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Sql]:
        """A connection for a read outside any write transaction."""

    @abstractmethod
    def close(self) -> None: ...

    def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._reading() as db:
            for i in range(0, len(event_ids), _IN_CHUNK):
                chunk = event_ids[i : i + _IN_CHUNK]
                rows = db.rows(
                    f"SELECT event_id FROM {self.dialect.events}"
                    f" WHERE event_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                found.update(r["event_id"] for r in rows)
        return found

    def apply(self, records: Sequence[Record]) -> None:
        """Add records (in seq order) and refold every job they touch, in one transaction."""
        if not records:
            return
        d = self.dialect
        with self._transaction() as db:
            touched: dict[str, None] = {}
            for r in records:
                event = Event.model_validate(r.event)
                db.execute(
                    f"INSERT INTO {d.events} ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",  # a record applied before: the same row
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
                self._refold(db, job_id)
            db.execute(
                f"INSERT INTO {d.meta} (key, value) VALUES ('head_seq', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(records[-1].seq),),
            )
        self.head_seq = records[-1].seq

    def _refold(self, db: Sql, job_id: str) -> None:
        rows = db.rows(
            f"SELECT seq, recorded_at, body FROM {self.dialect.events}"
            " WHERE job_id = ? ORDER BY seq",
            (job_id,),
        )
        events = [RecordedEvent.model_validate_json(r["body"]) for r in rows]
        believed = [e for e in events if not e.refused]
        if not believed:
            return
        state = fold(job_id, believed)
        values = (
            *job_values(state),
            rows[0]["seq"],
            rows[-1]["seq"],
            rows[-1]["recorded_at"],
            state.client,
        )
        db.execute(f"INSERT INTO {self.dialect.jobs} {_UPSERT_JOB}", values)

    def prune(self, before: datetime) -> int:
        """Delete jobs (and their events) whose last event was recorded before `before`."""
        cutoff = timestamp(before)
        d = self.dialect
        with self._transaction() as db:
            db.execute(
                f"DELETE FROM {d.events} WHERE job_id IN"
                f" (SELECT id FROM {d.jobs} WHERE updated_at < ?)",
                (cutoff,),
            )
            return db.execute(f"DELETE FROM {d.jobs} WHERE updated_at < ?", (cutoff,))


def job_values(state: JobState) -> tuple[object, ...]:
    """A folded job's columns, `id` to `outputs` (the rest come from its events' rows)."""

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
