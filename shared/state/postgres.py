"""PostgreSQL plumbing of the state stores (STATE_URL=postgresql://…): one database for all.

`open_pool` opens a small psycopg connection pool on the URL as given (its options, such as
`sslmode`, are libpq's), checks each connection as it is taken (one left broken by a server
restart is replaced, not handed out), and brings the store's schema up to date. The check
is a round trip only for a connection idle for a while or whose socket has something to
read (a server that ended it has sent its goodbye or closed the socket): a round trip on
every checkout doubled the cost of a read under load.
`Pool.statement` runs one statement without `BEGIN` and `COMMIT` (autocommit makes it atomic):
one round trip instead of three.

Schema versions live in the table `jobsuite_schema` (one row per store): migration N
(counting from 1) takes a store from version N-1 to N. They run in one transaction that first
takes a transaction-level advisory lock, so replicas starting at once apply each migration
exactly once, and a failed migration leaves the database as it was.

Every psycopg error (the server down, a pool with no connection free within its timeout, a
closed pool) becomes StateError, as SQLite's do; a URL's password never appears in one.
"""

from __future__ import annotations

import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from shared.errors import StateError
from shared.state.pg_url import masked

PgMigration = Callable[[psycopg.Connection], None]
# Any number, the same in every release: the lock every store's migrations take.
MIGRATION_LOCK = 0x6A6F6273  # "jobs"
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 4
# Seconds: a connection attempt (unless the URL says); waiting for a free connection.
CONNECT_TIMEOUT_S = 5
CHECKOUT_TIMEOUT_S = 5
OPEN_TIMEOUT_S = 10
# libpq's TCP options, unless the URL sets them: a path that died without a word (a host
# gone, a partition) ends a connection waiting on it within about half a minute, where the
# kernel's defaults wait some 15 minutes for unacknowledged data and 2 hours of silence
# before the first keepalive; a gateway's event loop would stall that long.
TCP_DEFAULTS: dict[str, object] = {
    "keepalives": 1,
    "keepalives_idle": 10,  # seconds of silence before the first probe
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,  # milliseconds data may go unacknowledged
}


def pg_statements(*sql: str) -> PgMigration:
    """A migration made of plain SQL statements, run in the migration's transaction."""

    def apply(db: psycopg.Connection) -> None:
        for statement in sql:
            db.execute(statement)

    return apply


def scrubbed(text: str, url: str) -> str:
    """An error's text without the URL's password, should libpq ever quote it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def connection_options(url: str) -> dict[str, object]:
    """psycopg.connect's keywords for a connection to `url`: autocommit, and the connect
    timeout and TCP_DEFAULTS where the URL does not set them (psycopg.Error: a bad URL)."""
    given = conninfo_to_dict(url)
    defaults = {"connect_timeout": CONNECT_TIMEOUT_S, **TCP_DEFAULTS}
    return {"autocommit": True, **{k: v for k, v in defaults.items() if k not in given}}


def open_pool(url: str, *, migrations: Sequence[PgMigration], store: str, what: str) -> Pool:
    """A pool on the database at `url`, `store`'s schema at the newest version. StateError
    ("cannot open <what> at <masked url>: …") when that fails."""
    try:
        kwargs = connection_options(url)
    except psycopg.Error as e:
        raise StateError(f"cannot open {what} at {masked(url)}: {scrubbed(str(e), url)}") from None
    liveness = _Liveness()
    pool = ConnectionPool(
        url,
        kwargs=kwargs,
        min_size=MIN_CONNECTIONS,
        max_size=MAX_CONNECTIONS,
        timeout=CHECKOUT_TIMEOUT_S,
        check=liveness.check,
        name=f"jobsuite-{store}",
        open=False,
    )
    try:
        pool.open(wait=True, timeout=OPEN_TIMEOUT_S)
        with pool.connection() as db:
            migrate(db, store, migrations)
    except (psycopg.Error, StateError) as e:
        pool.close()
        raise StateError(f"cannot open {what} at {masked(url)}: {scrubbed(str(e), url)}") from e
    return Pool(pool, url, liveness)


# Seconds: a connection back in the pool for less than this, with nothing to read on its
# socket, is taken as alive. Under load every checkout is one of these; one idle for longer
# may have been dropped without a word (a NAT's or load balancer's idle timeout), which only
# a round trip tells. A path that dies without a word while in use (the server's address
# moved to another host in a failover) shows when a statement fails on it: then the pool is
# drained (every connection closed, new ones made in the background), so a pool loses one
# statement to it, not one per connection.
RECENTLY_USED_S = 2.0
# Seconds: statements that fail on a dead path within this of a drain drain nothing more.
DRAINED_LATELY_S = 2.0


class _Liveness:
    """The pool's check of a connection as it is taken: ConnectionPool.check_connection (a
    round trip; raises for a dead connection, which the pool then replaces) unless the
    connection was used within RECENTLY_USED_S and its idle socket has nothing to read (a
    server that ended it, by a restart, `pg_terminate_backend` or its own
    `idle_session_timeout`, has sent its goodbye or closed the socket by then)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection, float] = (
            weakref.WeakKeyDictionary()
        )

    def returned(self, db: psycopg.Connection) -> None:
        with self._lock:
            self._returned[db] = time.monotonic()

    def check(self, db: psycopg.Connection) -> None:
        with self._lock:
            returned = self._returned.get(db)
        recent = returned is not None and time.monotonic() - returned < RECENTLY_USED_S
        if recent and not db.closed and not readable(db.fileno()):
            return
        ConnectionPool.check_connection(db)


def readable(fd: int) -> bool:
    """Whether the socket `fd` holds something not read yet (without waiting)."""
    idle = select.poll()  # not select(): a busy process's descriptors pass FD_SETSIZE
    idle.register(fd, select.POLLIN)
    return bool(idle.poll(0))


class Pool:
    """A store's connection pool; every use a short transaction or a single statement,
    errors as StateError."""

    def __init__(self, pool: ConnectionPool, url: str, liveness: _Liveness) -> None:
        self._pool = pool
        self._url = url
        self._liveness = liveness
        self._drain_lock = threading.Lock()
        self._drained_at = float("-inf")

    @contextmanager
    def transaction(self, doing: str) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction (committed when the block ends cleanly);
        errors as `statement`'s."""
        with self.statement(doing) as db, db.transaction():
            yield db

    @contextmanager
    def statement(self, doing: str) -> Iterator[psycopg.Connection]:
        """A connection outside any transaction block, for one statement (autocommit makes
        it its own transaction); psycopg's errors as StateError("cannot <doing>: …")."""
        try:
            with self._pool.connection() as db:
                try:
                    yield db
                finally:
                    if db.broken:  # lost in use: the others took the same path
                        self._drain_once()
                    else:
                        self._liveness.returned(db)
        except psycopg.Error as e:
            raise StateError(f"cannot {doing}: {scrubbed(str(e), self._url)}") from e

    def _drain_once(self) -> None:
        """Every connection closed and new ones made, once for the lot that a dead path
        breaks: the statements failing on it, one per thread that had a connection out,
        drain once, not each the connections the last drain just made."""
        now = time.monotonic()
        with self._drain_lock:
            if now - self._drained_at < DRAINED_LATELY_S:
                return
            self._drained_at = now
        self._pool.drain()

    def close(self) -> None:
        self._pool.close()


def schema_version(db: psycopg.Connection, store: str) -> int:
    row = db.execute("SELECT version FROM jobsuite_schema WHERE store = %s", (store,)).fetchone()
    return int(row[0]) if row else 0


def migrate(db: psycopg.Connection, store: str, migrations: Sequence[PgMigration]) -> None:
    """Apply the migrations `store` has not had yet, under the advisory lock; StateError when
    its version is newer than `migrations` know (an older release on a newer database)."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        db.execute(
            "CREATE TABLE IF NOT EXISTS jobsuite_schema ("
            " store TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        version = schema_version(db, store)
        if version > len(migrations):
            raise StateError(
                f"its schema version {version} is newer than this release knows ({len(migrations)})"
            )
        for migration in migrations[version:]:
            migration(db)
        if version < len(migrations):
            db.execute(
                "INSERT INTO jobsuite_schema (store, version) VALUES (%s, %s)"
                " ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version",
                (store, len(migrations)),
            )
