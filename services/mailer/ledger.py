"""The durable record of mail the SMTP server has accepted, keyed by job id.

A redelivered or replayed mail job whose id is here is not sent again. SQLite in WAL mode
with `synchronous=FULL`: a record is on disk when `record` returns. Every mailer replica must
use the same file (in STATE_DIR, on a volume they share, on one host).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from shared.errors import JobsuiteError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    job_id     TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    sent_at    TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    refused    TEXT NOT NULL
)
"""


class LedgerError(JobsuiteError):
    """The ledger cannot be opened, read or written."""


@dataclass(frozen=True)
class SentRecord:
    job_id: str
    message_id: str
    recipients: int
    # Recipients the server refused while accepting the mail for the others: "550 No such user"
    refused: dict[str, str] = field(default_factory=dict)
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def report(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "message_id": self.message_id,
            "sent_at": self.sent_at.isoformat(),
            "recipients": self.recipients,
            "refused": self.refused,
        }


class SentLedger(Protocol):
    def lookup(self, job_id: str) -> SentRecord | None: ...
    def record(self, entry: SentRecord) -> None: ...


class SqliteLedger:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()  # one connection, used by the job thread and tests

    @classmethod
    def open(cls, path: Path) -> SqliteLedger:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # the commit survives a power cut
            db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise LedgerError(f"cannot open the mail ledger {path}: {e}") from e
        return cls(db)

    def lookup(self, job_id: str) -> SentRecord | None:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT message_id, sent_at, recipients, refused FROM sent WHERE job_id = ?",
                    (job_id,),
                ).fetchone()
        except sqlite3.Error as e:
            raise LedgerError(f"cannot read the mail ledger: {e}") from e
        if row is None:
            return None
        message_id, sent_at, recipients, refused = row
        return SentRecord(
            job_id, message_id, recipients, json.loads(refused), datetime.fromisoformat(sent_at)
        )

    def record(self, entry: SentRecord) -> None:
        """Commit `entry` durably; a job id already recorded keeps its first record."""
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR IGNORE INTO sent VALUES (?, ?, ?, ?, ?)",
                    (
                        entry.job_id,
                        entry.message_id,
                        entry.sent_at.isoformat(),
                        entry.recipients,
                        json.dumps(entry.refused),
                    ),
                )
        except sqlite3.Error as e:
            raise LedgerError(f"cannot write the mail ledger: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()
