"""Opening a state database: pragmas, schema versions in user_version, migrations once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from shared.errors import StateError
from shared.state.sqlite import Migration, open_database, statements, write_transaction

# Each migration leaves a row behind, so a migration applied twice shows.
CREATE = statements("CREATE TABLE applied (n INTEGER NOT NULL)", "INSERT INTO applied VALUES (1)")
SECOND = statements("INSERT INTO applied VALUES (2)")
THIRD = statements("INSERT INTO applied VALUES (3)")


def opened(path: Path, migrations: list[Migration]) -> sqlite3.Connection:
    return open_database(
        path, migrations=migrations, synchronous="NORMAL", busy_timeout_s=10, what="the test db"
    )


def applied(path: Path) -> tuple[int, list[int]]:
    with sqlite3.connect(path) as db:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        return version, [n for (n,) in db.execute("SELECT n FROM applied ORDER BY n")]


def test_a_new_database_gets_every_migration_and_the_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "state" / "test.sqlite3"
    db = opened(path, [CREATE, SECOND])
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert db.execute("PRAGMA busy_timeout").fetchone() == (10_000,)
    db.close()
    assert applied(path) == (2, [1, 2])


def test_reopening_applies_only_the_migrations_added_since(tmp_path: Path) -> None:
    path = tmp_path / "test.sqlite3"
    opened(path, [CREATE, SECOND]).close()
    opened(path, [CREATE, SECOND]).close()
    assert applied(path) == (2, [1, 2])
    opened(path, [CREATE, SECOND, THIRD]).close()
    assert applied(path) == (3, [1, 2, 3])


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "test.sqlite3"
    opened(path, [CREATE]).close()
    broken = statements("INSERT INTO applied VALUES (2)", "INSERT INTO missing VALUES (1)")
    with pytest.raises(StateError, match=r"cannot open the test db .*no such table: missing"):
        opened(path, [CREATE, broken])
    assert applied(path) == (1, [1])


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test.sqlite3"
    opened(path, [CREATE, SECOND]).close()
    with pytest.raises(StateError, match="schema version 2 is newer than this release knows"):
        opened(path, [CREATE])
    assert applied(path) == (2, [1, 2])


def _open_and_close(path: Path, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    opened(path, [CREATE, SECOND, THIRD]).close()


def test_processes_opening_a_new_database_at_once_apply_each_migration_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "test.sqlite3"
    fork = multiprocessing.get_context("fork")
    start = fork.Event()
    openers = [fork.Process(target=_open_and_close, args=(path, start)) for _ in range(6)]
    for opener in openers:
        opener.start()
    start.set()
    for opener in openers:
        opener.join(30)
    assert [opener.exitcode for opener in openers] == [0] * len(openers)
    assert applied(path) == (3, [1, 2, 3])


def other_writer_can_write(path: Path) -> None:
    other = opened(path, [CREATE])
    other.execute("PRAGMA busy_timeout = 100")
    with write_transaction(other):
        other.execute("INSERT INTO applied VALUES (9)")
    other.close()


def test_a_commit_that_fails_leaves_no_transaction_holding_the_write_lock(tmp_path: Path) -> None:
    db = opened(tmp_path / "state.sqlite3", [CREATE])
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (n INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent (n) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), write_transaction(db):
        db.execute("INSERT INTO child VALUES (42)")  # no such parent: refused at the COMMIT
    assert not db.in_transaction
    other_writer_can_write(tmp_path / "state.sqlite3")
    assert db.execute("SELECT count(*) FROM child").fetchone() == (0,)


def test_a_transaction_an_interrupted_caller_left_open_is_rolled_back_first(
    tmp_path: Path,
) -> None:
    db = opened(tmp_path / "state.sqlite3", [CREATE])
    db.execute("BEGIN IMMEDIATE")  # as when an exception is raised into a thread right here
    db.execute("INSERT INTO applied VALUES (7)")
    with write_transaction(db):
        db.execute("INSERT INTO applied VALUES (8)")
    assert not db.in_transaction
    other_writer_can_write(tmp_path / "state.sqlite3")
    assert applied(tmp_path / "state.sqlite3") == (1, [1, 8, 9])
