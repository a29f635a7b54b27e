"""SQLite plumbing of the state stores: one database file per store, under STATE_DIR.

`open_database` makes the folder, connects in autocommit mode (every transaction explicit),
waits on a busy database rather than failing at once, turns on WAL (readers never block the
writer), sets the store's `synchronous` level, and brings the schema up to date.

Schema versions live in `PRAGMA user_version`: migration N (counting from 1) takes a database
from version N-1 to N. They run in one `BEGIN IMMEDIATE` transaction that reads the version
again under the write lock, so processes opening the same new file at once apply each
migration exactly once, and a failed migration leaves the database as it was. A database
written before versions were kept (version 0, tables present) goes through every migration,
so each is written to be a no-op where that older code had done its work already
(`CREATE ... IF NOT EXISTS`, a column added only when it is missing).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from shared.errors import StateError

Migration = Callable[[sqlite3.Connection], None]
Synchronous = Literal["NORMAL", "FULL"]


def statements(*sql: str) -> Migration:
    """A migration made of plain SQL statements, run one by one inside the migration's
    transaction (`executescript` would commit it halfway)."""

    def apply(db: sqlite3.Connection) -> None:
        for statement in sql:
            db.execute(statement)

    return apply


def open_database(
    path: Path,
    *,
    migrations: Sequence[Migration],
    synchronous: Synchronous,
    busy_timeout_s: float,
    what: str,
) -> sqlite3.Connection:
    """A connection to the database at `path`, its schema at the newest version. StateError
    ("cannot open <what> <path>: …") when that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            _use_wal(db, busy_timeout_s)
            db.execute(f"PRAGMA synchronous={synchronous}")
            migrate(db, migrations)
        except BaseException:
            db.close()
            raise
    except (sqlite3.Error, OSError, StateError) as e:
        raise StateError(f"cannot open {what} {path}: {e}") from e
    return db


def _use_wal(db: sqlite3.Connection, within_s: float) -> None:
    """Switch to WAL, waiting up to `within_s` for the lock it takes. SQLite does not always
    call its busy handler there: while another process creates the same new database, the
    pragma can fail at once with "database is locked" (seen with six processes starting
    together), so it is asked again until the timeout."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def adopt_legacy_file(legacy: Path, path: Path) -> bool:
    """Copy the database at `legacy` (where an earlier release kept it) to `path`, once:
    only when `path` does not exist yet and `legacy` does. SQLite's online backup copies a
    consistent state even while an old process still writes it. True when it copied."""
    if path.exists() or not legacy.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".adopting")
    try:
        with sqlite3.connect(legacy) as source, sqlite3.connect(partial) as target:
            source.backup(target)
        partial.replace(path)  # whole or not at all, should two processes race here
    except (sqlite3.Error, OSError) as e:
        partial.unlink(missing_ok=True)
        raise StateError(f"cannot copy {legacy} to {path}: {e}") from e
    return True


def schema_version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    """Apply the migrations the database has not had yet; StateError when its version is
    newer than `migrations` know (an older release opening a newer database)."""
    if schema_version(db) == len(migrations):
        return  # the common case: no write lock taken
    with write_transaction(db):
        version = schema_version(db)
        if version > len(migrations):
            raise StateError(
                f"its schema version {version} is newer than this release knows ({len(migrations)})"
            )
        for migration in migrations[version:]:
            migration(db)
        # PRAGMA takes no parameters; the value is an int we computed.
        db.execute(f"PRAGMA user_version = {len(migrations)}")


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` (the write lock at once, waiting while another writer holds it),
    then COMMIT when the block ends cleanly, ROLLBACK when it does not, or when the COMMIT
    fails. Never left open: an open transaction holds the file's write lock, and every
    other process's writes would fail until this one ends. One that an earlier caller left
    (its thread interrupted by a job's time limit, an exception raised into it between the
    BEGIN and the `try`) is rolled back first."""
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def executemany_unless_busy(
    db: sqlite3.Connection, busy_timeout_ms: int, sql: str, rows: Sequence[tuple[object, ...]]
) -> bool:
    """`sql` for each of `rows` in one transaction, or False (nothing written) when another
    connection holds the write lock: the busy handler, which would sleep until the lock
    comes free or the timeout runs out, is off for this one attempt."""
    try:
        db.execute("PRAGMA busy_timeout = 0")
        with write_transaction(db):
            db.executemany(sql, rows)
    except sqlite3.OperationalError as e:
        if e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # BUSY, or one of its kinds
            return False
        raise
    finally:
        db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    return True


@contextmanager
def state_errors(doing: str) -> Iterator[None]:
    """SQLite's errors as StateError("cannot <doing>: …"), so callers know no SQLite."""
    try:
        yield
    except sqlite3.Error as e:
        raise StateError(f"cannot {doing}: {e}") from e
