"""The sent-mail ledger: the durable record of mail the SMTP server has accepted, by job id.

A redelivered or replayed mail job whose id is here is not sent again. Every mailer replica
uses the same store. A record is on disk when `record` returns (SQLite: WAL with
`synchronous=FULL`). Errors are StateError.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from shared.state.sqlite import Migration, open_database, state_errors, statements


@dataclass(frozen=True)
class SentRecord:
    job_id: str
    message_id: str
    recipients: int
    # Recipients the server refused while accepting the mail for the others: "550 No such user"
    refused: dict[str, str] = field(default_factory=dict)
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    client: str | None = None  # the mail job's client (the API key that submitted it)

    def report(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "message_id": self.message_id,
            "sent_at": self.sent_at.isoformat(),
            "recipients": self.recipients,
            "refused": self.refused,
        }


class SentLedger(Protocol):
    def lookup(self, job_id: str) -> SentRecord | None:
        """The record of the job's mail, or None when it was never sent."""
        ...

    def record(self, entry: SentRecord) -> None:
        """Commit `entry` durably; a job id already recorded keeps its first record."""
        ...

    def close(self) -> None: ...


MIGRATIONS: list[Migration] = [
    statements(
        """CREATE TABLE IF NOT EXISTS sent (
            job_id     TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,
            sent_at    TEXT NOT NULL,
            recipients INTEGER NOT NULL,
            refused    TEXT NOT NULL
        )"""
    ),
    statements("ALTER TABLE sent ADD COLUMN client TEXT"),
]


def record_from_row(job_id: str, row: Sequence[Any]) -> SentRecord:
    """A ledger row (message_id, sent_at, recipients, refused, client), in either store."""
    message_id, sent_at, recipients, refused, client = row
    return SentRecord(
        job_id, message_id, recipients, json.loads(refused), datetime.fromisoformat(sent_at), client
    )


class SqliteSentLedger:
    """The SentLedger in one SQLite file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()  # one connection, used by the job thread and tests

    @classmethod
    def open(cls, path: Path) -> SqliteSentLedger:
        db = open_database(
            path,
            migrations=MIGRATIONS,
            synchronous="FULL",  # the commit survives a power cut
            busy_timeout_s=10,
            what="the mail ledger",
        )
        return cls(db)

    def lookup(self, job_id: str) -> SentRecord | None:
        with self._lock, state_errors("read the mail ledger"):
            row = self._db.execute(
                "SELECT message_id, sent_at, recipients, refused, client FROM sent"
                " WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        return None if row is None else record_from_row(job_id, row)

    def record(self, entry: SentRecord) -> None:
        with self._lock, state_errors("write the mail ledger"):
            self._db.execute(
                "INSERT OR IGNORE INTO sent"
                " (job_id, message_id, sent_at, recipients, refused, client)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.job_id,
                    entry.message_id,
                    entry.sent_at.isoformat(),
                    entry.recipients,
                    json.dumps(entry.refused),
                    entry.client,
                ),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
