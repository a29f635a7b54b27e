"""The sent-mail ledger: the durable record of mail the SMTP server has accepted, by job id,
and of who is sending a job's mail right now.

A redelivered or replayed mail job whose id is here is not sent again. Every mailer replica
uses the same store. A record is on disk when `record` returns (SQLite: WAL with
`synchronous=FULL`). Errors are StateError.

The record comes only after the server's 250, so a second delivery of a job whose mail is
still on its way (its first mailer lost the broker mid-send, and the broker gave the job to
another) would find nothing and send again. A mailer therefore claims the job before it
sends: one holder at a time, for a lease longer than the first could still be sending
(JOB_TIME_LIMIT, then the stuck grace after which its process ends). The record ends the
claim; a send that failed before the 250 gives it up; a claim past its lease is void (its
holder is gone), so a crash mid-send delays the mail, never loses it. Each record also clears
the void claims, so those of jobs that never came back do not pile up.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from shared.state.sqlite import (
    Migration,
    open_database,
    state_errors,
    statements,
    write_transaction,
)


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


@dataclass(frozen=True)
class SendClaim:
    """Who may send a job's mail: `holder`, until `expires` (past it the claim is void)."""

    holder: str
    expires: datetime


class SentLedger(Protocol):
    def lookup(self, job_id: str) -> SentRecord | None:
        """The record of the job's mail, or None when it was never sent."""
        ...

    def claim(
        self, job_id: str, holder: str, lease_s: float, replacing: str | None = None
    ) -> SentRecord | SendClaim:
        """The job's record when its mail was sent; else the claim on sending it, in one
        transaction: `holder`'s own for `lease_s` from now (taken, or renewed), unless
        another holder's has not expired (then that one, and nothing changes). A claim of
        `replacing` (a holder known to have died) is taken over as if it had expired."""
        ...

    def release(self, job_id: str, holder: str) -> None:
        """End `holder`'s claim on the job (its send failed before the server's 250), so
        the job's next delivery may send at once; another holder's claim stays."""
        ...

    def record(self, entry: SentRecord) -> None:
        """Commit `entry` durably and end the job's claim, and every claim past its lease;
        a job id already recorded keeps its first record."""
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
    statements(
        """CREATE TABLE IF NOT EXISTS sending (
            job_id  TEXT PRIMARY KEY,
            holder  TEXT NOT NULL,
            expires REAL NOT NULL
        )"""  # expires: seconds since the epoch on this host's clock (one host shares a file)
    ),
]
_SENT_ROW = "SELECT message_id, sent_at, recipients, refused, client FROM sent WHERE job_id = ?"


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
            row = self._db.execute(_SENT_ROW, (job_id,)).fetchone()
        return None if row is None else record_from_row(job_id, row)

    def claim(
        self, job_id: str, holder: str, lease_s: float, replacing: str | None = None
    ) -> SentRecord | SendClaim:
        # BEGIN IMMEDIATE: every mailer's claim and record on this file go one at a time.
        with self._lock, state_errors("claim the mail's sending"), write_transaction(self._db):
            row = self._db.execute(_SENT_ROW, (job_id,)).fetchone()
            if row is not None:
                return record_from_row(job_id, row)
            now = time.time()
            held = self._db.execute(
                "SELECT holder, expires FROM sending WHERE job_id = ?", (job_id,)
            ).fetchone()
            if held is not None and held[0] not in (holder, replacing) and held[1] > now:
                return SendClaim(held[0], _from_epoch(held[1]))
            expires = now + lease_s
            self._db.execute(
                "INSERT OR REPLACE INTO sending (job_id, holder, expires) VALUES (?, ?, ?)",
                (job_id, holder, expires),
            )
            return SendClaim(holder, _from_epoch(expires))

    def release(self, job_id: str, holder: str) -> None:
        with self._lock, state_errors("release the mail's claim"):
            self._db.execute(
                "DELETE FROM sending WHERE job_id = ? AND holder = ?", (job_id, holder)
            )

    def record(self, entry: SentRecord) -> None:
        with self._lock, state_errors("write the mail ledger"), write_transaction(self._db):
            # The job's claim ends, and so does every claim past its lease: void already,
            # it is left only by a holder that died with its job never coming back.
            self._db.execute(
                "DELETE FROM sending WHERE job_id = ? OR expires <= ?", (entry.job_id, time.time())
            )
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


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
