"""API keys: who may call the gateway and the audit API, in what role, within what limits.

A key is `jsk_` + 32 random bytes (URL-safe base64), shown once when it is made; the store
keeps only its SHA-256, so a stolen database gives no usable key. Each key has a unique name
(the `client` its jobs carry), an admin flag, an optional expiry, a revocation time, and its
limits. Creating a NAME that exists fails unless it is a rotation, which replaces the key
(the old one stops working) and keeps the name. Errors are StateError.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from shared.errors import StateError
from shared.state.sqlite import (
    Migration,
    open_database,
    state_errors,
    statements,
    write_transaction,
)

KEY_PREFIX = "jsk_"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)

# Defaults of a new key's limits (`jobsuite keys create --help` shows them).
DEFAULT_RECIPIENTS_PER_MAIL = 20
DEFAULT_MAILS_PER_HOUR = 100
DEFAULT_SUBMISSIONS_PER_SECOND = 20.0
DEFAULT_BURST = 40


@dataclass(frozen=True)
class KeyLimits:
    recipients_per_mail: int = DEFAULT_RECIPIENTS_PER_MAIL
    mails_per_hour: int = DEFAULT_MAILS_PER_HOUR
    submissions_per_second: float = DEFAULT_SUBMISSIONS_PER_SECOND
    burst: int = DEFAULT_BURST  # submissions allowed at once before the rate applies

    def __post_init__(self) -> None:
        if (
            self.recipients_per_mail < 1
            or self.mails_per_hour < 0
            or self.submissions_per_second <= 0
            or self.burst < 1
        ):
            raise ValueError(f"limits out of range: {self}")


@dataclass(frozen=True)
class ApiKey:
    name: str
    admin: bool
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    limits: KeyLimits = field(default_factory=KeyLimits)

    def refusal(self, now: datetime) -> str | None:
        """Why this key may not be used now ("revoked", "expired"), or None."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None


def key_row(secret: str, record: ApiKey, admin: object) -> tuple[object, ...]:
    """The values of a new key's row, hash first then `_COLUMNS`, in either store (`admin`
    as the store keeps a flag)."""
    limits = record.limits
    return (
        hash_secret(secret),
        record.name,
        admin,
        record.created_at.isoformat(),
        record.expires_at.isoformat() if record.expires_at else None,
        None,
        limits.recipients_per_mail,
        limits.mails_per_hour,
        limits.submissions_per_second,
        limits.burst,
    )


class ApiKeyStore(Protocol):
    def create(
        self,
        name: str,
        *,
        admin: bool = False,
        expires_at: datetime | None = None,
        limits: KeyLimits | None = None,
        rotate: bool = False,
    ) -> tuple[ApiKey, str]:
        """A new key for `name`: its record and the key itself (shown once). StateError when
        the name is taken (by a key not revoked) and `rotate` is false; a rotation replaces
        the old key (which stops working) with this one, its role and limits as given."""
        ...

    def authenticate(self, secret: str) -> ApiKey | None:
        """The key `secret` is, revoked or expired ones included (the caller says which); None
        for a key the store does not know."""
        ...

    def find(self, name: str) -> ApiKey | None: ...

    def list(self) -> list[ApiKey]: ...

    def revoke(self, name: str) -> ApiKey:
        """Revoke the key of that name; StateError when there is none."""
        ...

    def close(self) -> None: ...


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise StateError(
            f"invalid key name {name!r}: lowercase letters, digits, '.', '_' and '-',"
            " starting with a letter or digit, at most 64"
        )
    return name


MIGRATIONS: list[Migration] = [
    statements(
        """CREATE TABLE IF NOT EXISTS api_keys (
            name TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            admin INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT,
            recipients_per_mail INTEGER NOT NULL,
            mails_per_hour INTEGER NOT NULL,
            submissions_per_second REAL NOT NULL,
            burst INTEGER NOT NULL
        )"""
    ),
]
_COLUMNS = (
    "name, admin, created_at, expires_at, revoked_at,"
    " recipients_per_mail, mails_per_hour, submissions_per_second, burst"
)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def key_from_row(row: tuple[Any, ...]) -> ApiKey:
    """An ApiKey from a row of `_COLUMNS` (either store's)."""
    name, admin, created, expires, revoked, recipients, mails, rate, burst = row
    return ApiKey(
        name=str(name),
        admin=bool(admin),
        created_at=datetime.fromisoformat(str(created)),
        expires_at=_when(expires),
        revoked_at=_when(revoked),
        limits=KeyLimits(int(recipients), int(mails), float(rate), int(burst)),
    )


# Keys `authenticate` keeps, at most; a full cache starts again (misses are never kept, so
# only real keys fill it).
KNOWN_KEYS_KEPT = 1024


class SqliteApiKeyStore:
    """The ApiKeyStore in one SQLite file (WAL, synchronous=FULL: a key once printed works).

    `authenticate` keeps the keys it found, and drops them all whenever `PRAGMA
    data_version` says another connection (another process's `jobsuite keys`, another
    replica) has committed since: one pragma instead of a query and a row's parse per
    request, and a revocation anywhere still counts from the next request on. This
    connection's own writes do not move data_version, so create and revoke drop them too."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._known: dict[str, ApiKey] = {}  # by the secret's hash
        self._known_at: int | None = None  # the data_version they were read at

    @classmethod
    def open(cls, path: Path) -> SqliteApiKeyStore:
        db = open_database(
            path,
            migrations=MIGRATIONS,
            synchronous="FULL",
            busy_timeout_s=5,
            what="the API key store",
        )
        return cls(db)

    def create(
        self,
        name: str,
        *,
        admin: bool = False,
        expires_at: datetime | None = None,
        limits: KeyLimits | None = None,
        rotate: bool = False,
    ) -> tuple[ApiKey, str]:
        check_name(name)
        secret = new_secret()
        record = ApiKey(name, admin, datetime.now(UTC), expires_at, None, limits or KeyLimits())
        with self._lock, state_errors("create an API key"), write_transaction(self._db):
            self._known.clear()  # a rotation replaces a key that may be kept
            row = self._db.execute(
                "SELECT revoked_at FROM api_keys WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] is None and not rotate:
                raise StateError(f"a key named {name!r} exists: revoke it, or use --rotate")
            self._db.execute(
                f"INSERT OR REPLACE INTO api_keys (hash, {_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                key_row(secret, record, int(admin)),
            )
        return record, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        digest = hash_secret(secret)
        with self._lock, state_errors("read the API keys"):
            # The version first: a change committed after it is seen at the next call.
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._known_at:
                self._known.clear()
                self._known_at = version
            known = self._known.get(digest)
            if known is not None:
                return known
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE hash = ?", (digest,)
            ).fetchone()
            if row is None:
                return None
            key = key_from_row(row)
            if len(self._known) >= KNOWN_KEYS_KEPT:
                self._known.clear()
            self._known[digest] = key
            return key

    def find(self, name: str) -> ApiKey | None:
        return self._one("name = ?", name)

    def list(self) -> list[ApiKey]:
        with self._lock, state_errors("read the API keys"):
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name").fetchall()
        return [key_from_row(r) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        now = datetime.now(UTC).isoformat()
        with self._lock, state_errors("revoke an API key"):
            self._known.clear()
            changed = self._db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?",
                (now, name),
            ).rowcount
        found = self.find(name)
        if not changed or found is None:
            raise StateError(f"no key named {name!r}")
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, where: str, value: str) -> ApiKey | None:
        with self._lock, state_errors("read the API keys"):
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE {where}", (value,)
            ).fetchone()
        return key_from_row(row) if row else None
