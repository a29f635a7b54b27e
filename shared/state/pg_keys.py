"""The ApiKeyStore in PostgreSQL (STATE_URL), shared by every host of the suite.

The same rules as `SqliteApiKeyStore`. Where SQLite takes its write lock to check a name and
write it, `create` takes a transaction-level advisory lock on the name, so two `jobsuite keys
create NAME` at once give one key and one "exists".
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from shared.errors import StateError
from shared.log import get_logger
from shared.state.keys import (
    KNOWN_KEYS_KEPT,
    ApiKey,
    KeyLimits,
    check_name,
    hash_secret,
    key_from_row,
    key_row,
    new_secret,
)
from shared.state.pg_key_changes import KeyChanges, install_trigger
from shared.state.postgres import PgMigration, Pool, open_pool, pg_statements

STORE = "api_keys"
log = get_logger(__name__)

MIGRATIONS: list[PgMigration] = [
    pg_statements(
        """CREATE TABLE IF NOT EXISTS api_keys (
            name TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            admin BOOLEAN NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT,
            recipients_per_mail INTEGER NOT NULL,
            mails_per_hour INTEGER NOT NULL,
            submissions_per_second DOUBLE PRECISION NOT NULL,
            burst INTEGER NOT NULL
        )"""
    ),
]
_COLUMNS = (
    "name, admin, created_at, expires_at, revoked_at,"
    " recipients_per_mail, mails_per_hour, submissions_per_second, burst"
)
_UPDATE = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in ("hash," + _COLUMNS).split(","))


class PostgresApiKeyStore:
    """The ApiKeyStore in PostgreSQL."""

    def __init__(self, pool: Pool, changes: KeyChanges | None = None) -> None:
        self._pool = pool
        self._kept = _KeptKeys(changes) if changes else None

    @classmethod
    def open(cls, url: str) -> PostgresApiKeyStore:
        pool = open_pool(url, migrations=MIGRATIONS, store=STORE, what="the API key store")
        try:
            install_trigger(pool)
        except StateError as e:  # no privilege, say: then no heartbeat comes back either
            log.warning(
                "api_key_change_triggers_missing",
                error=str(e),
                note="every request reads its key from the database",
            )
        return cls(pool, KeyChanges(url))

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
        with self._pool.transaction("create an API key") as db:
            db.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"api_keys:{name}",)
            )
            row = db.execute(
                "SELECT revoked_at FROM api_keys WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            if row is not None and row[0] is None and not rotate:
                raise StateError(f"a key named {name!r} exists: revoke it, or use --rotate")
            db.execute(
                f"INSERT INTO api_keys (hash, {_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (name) DO UPDATE SET {_UPDATE}",
                key_row(secret, record, admin),
            )
        if self._kept is not None:  # a rotation replaces a key that may be kept
            self._kept.drop()
        return record, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        digest = hash_secret(secret)
        if self._kept is None:
            return self._one("hash", digest)
        read_at = self._kept.generation()  # before the read: a change after it drops it
        key = self._kept.get(digest, read_at)
        if key is None:
            key = self._one("hash", digest)
            if key is not None:
                self._kept.keep(digest, key, read_at)
        return key

    def find(self, name: str) -> ApiKey | None:
        return self._one("name", name)

    def list(self) -> list[ApiKey]:
        with self._pool.statement("read the API keys") as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name").fetchall()
        return [key_from_row(r) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        now = datetime.now(UTC).isoformat()
        with self._pool.transaction("revoke an API key") as db:
            changed = db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE name = %s",
                (now, name),
            ).rowcount
        if self._kept is not None:
            self._kept.drop()
        found = self.find(name)
        if not changed or found is None:
            raise StateError(f"no key named {name!r}")
        return found

    def close(self) -> None:
        if self._kept is not None:
            self._kept.close()
        self._pool.close()

    def _one(self, column: str, value: str) -> ApiKey | None:
        with self._pool.statement("read the API keys") as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE {column} = %s",
                (value,),
            ).fetchone()
        return key_from_row(row) if row else None


class _KeptKeys:
    """Keys read by their secret's hash, kept while `changes` hears that none changed (the
    SQLite store's `PRAGMA data_version` check, for a server)."""

    def __init__(self, changes: KeyChanges) -> None:
        self._changes = changes
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._generation: int | None = None  # the one they were read at

    def generation(self) -> int | None:
        return self._changes.generation()

    def get(self, digest: str, generation: int | None) -> ApiKey | None:
        """The key kept for `digest` if nothing changed since; None: read it."""
        if generation is None:
            return None
        with self._lock:
            if self._generation is None or generation > self._generation:
                self._keys.clear()
                self._generation = generation
            elif generation < self._generation:  # a thread that read it before a change
                return None
            return self._keys.get(digest)

    def drop(self) -> None:
        """This process changed a key: drop them all now, not when the trigger's word comes
        (and refuse to keep what another thread read before the change)."""
        self._changes.changed()
        with self._lock:
            self._keys.clear()

    def keep(self, digest: str, key: ApiKey, read_at: int | None) -> None:
        """Keep `key`, read after `generation()` gave `read_at`, unless a change came since."""
        with self._lock:
            if read_at is None or read_at != self._generation:
                return
            if self._changes.generation() != read_at:
                return
            if len(self._keys) >= KNOWN_KEYS_KEPT:
                self._keys.clear()
            self._keys[digest] = key

    def close(self) -> None:
        self._changes.close()
