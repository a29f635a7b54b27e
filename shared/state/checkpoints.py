"""The audit log's checkpoints: where its hash chain stood, kept outside the audit folder.

After every appended batch, at start, before a prune and at shutdown the audit service adds
a row: the head of the chain (seq and hash), the base it starts from (the last pruned record,
or seq 0 and the genesis hash), why, when, and, when `AUDIT_SIGNING_KEY` is set, an
HMAC-SHA256 over all of that. Rows are only ever added (pruning the log drops the rows it
makes uncheckable); `jobsuite audit verify` compares them with the chain on disk. `log` names
the audit log (the namespace), so suites sharing a state folder keep apart.

Written with `synchronous=NORMAL`: a power cut may lose the newest rows, which only leaves
the log ahead of its checkpoints (never a false alarm), and a batch costs no extra fsync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from shared.state.sqlite import Migration, open_database, state_errors, statements

# What a checkpoint was written for.
REASONS = ("origin", "adopted", "start", "batch", "prune", "shutdown")


@dataclass(frozen=True)
class Checkpoint:
    log: str
    seq: int
    hash: str
    base_seq: int
    base_hash: str
    reason: str
    at: str
    audit_dir: str = ""  # where the log was, for people; not signed (a folder may move)
    key_id: str | None = None
    signature: str | None = None
    id: int = 0  # the row number, once stored

    def signed_bytes(self) -> bytes:
        """What the signature covers: the log's identity, head, base, reason and time."""
        fields = {
            "log": self.log,
            "seq": self.seq,
            "hash": self.hash,
            "base_seq": self.base_seq,
            "base_hash": self.base_hash,
            "reason": self.reason,
            "at": self.at,
        }
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class Signer:
    """HMAC-SHA256 with the `AUDIT_SIGNING_KEY` secret. `key_id` (a hash of the key) lets
    verify tell "signed with another key" from "edited"."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()
        self.key_id = hashlib.sha256(b"jobsuite-audit-key-id:" + self._key).hexdigest()[:16]

    def sign(self, cp: Checkpoint) -> Checkpoint:
        mac = hmac.new(self._key, cp.signed_bytes(), hashlib.sha256).hexdigest()
        return replace(cp, key_id=self.key_id, signature=mac)

    def valid(self, cp: Checkpoint) -> bool:
        if cp.signature is None:
            return False
        mac = hmac.new(self._key, cp.signed_bytes(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, cp.signature)


class CheckpointStore(Protocol):
    def add(self, cp: Checkpoint) -> Checkpoint:
        """Store `cp` (committed when this returns); returns it with its row id."""
        ...

    def latest(self, log: str) -> Checkpoint | None:
        """The newest checkpoint of `log`, or None when it has none."""
        ...

    def history(self, log: str) -> list[Checkpoint]:
        """Every checkpoint of `log`, oldest first."""
        ...

    def drop_before(self, log: str, seq: int) -> int:
        """Forget the batch checkpoints below `seq` (pruned from the log, so uncheckable);
        the first and every prune checkpoint stay. Returns how many went."""
        ...

    def close(self) -> None: ...


MIGRATIONS: list[Migration] = [
    statements(
        """CREATE TABLE IF NOT EXISTS checkpoints (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            log       TEXT NOT NULL,
            seq       INTEGER NOT NULL,
            hash      TEXT NOT NULL,
            base_seq  INTEGER NOT NULL,
            base_hash TEXT NOT NULL,
            reason    TEXT NOT NULL,
            at        TEXT NOT NULL,
            audit_dir TEXT NOT NULL,
            key_id    TEXT,
            signature TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS checkpoints_log ON checkpoints (log, id)",
    ),
]
_COLUMNS = "log, seq, hash, base_seq, base_hash, reason, at, audit_dir, key_id, signature, id"


class SqliteCheckpointStore:
    """The CheckpointStore in one SQLite file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()  # the consumer writes; the health probe may read

    @classmethod
    def open(cls, path: Path) -> SqliteCheckpointStore:
        db = open_database(
            path,
            migrations=MIGRATIONS,
            synchronous="NORMAL",  # see the module's docstring
            busy_timeout_s=10,
            what="the audit checkpoints",
        )
        return cls(db)

    def add(self, cp: Checkpoint) -> Checkpoint:
        with self._lock, state_errors("write an audit checkpoint"):
            cursor = self._db.execute(
                f"INSERT INTO checkpoints ({_COLUMNS.removesuffix(', id')})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cp.log,
                    cp.seq,
                    cp.hash,
                    cp.base_seq,
                    cp.base_hash,
                    cp.reason,
                    cp.at,
                    cp.audit_dir,
                    cp.key_id,
                    cp.signature,
                ),
            )
        return replace(cp, id=int(cursor.lastrowid or 0))

    def latest(self, log: str) -> Checkpoint | None:
        with self._lock, state_errors("read the audit checkpoints"):
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE log = ? ORDER BY id DESC LIMIT 1",
                (log,),
            ).fetchone()
        return Checkpoint(*row) if row else None

    def history(self, log: str) -> list[Checkpoint]:
        with self._lock, state_errors("read the audit checkpoints"):
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE log = ? ORDER BY id", (log,)
            ).fetchall()
        return [Checkpoint(*row) for row in rows]

    def drop_before(self, log: str, seq: int) -> int:
        with self._lock, state_errors("prune the audit checkpoints"):
            cursor = self._db.execute(
                "DELETE FROM checkpoints WHERE log = ? AND seq < ? AND reason != 'prune'"
                " AND id != (SELECT MIN(id) FROM checkpoints WHERE log = ?)",
                (log, seq, log),
            )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
