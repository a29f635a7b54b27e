"""The submissions store: Idempotency-Key reservations, jobs in doubt, accepted jobs. The
contract tests run on both backends (`state_settings`: SQLite, PostgreSQL); the upgrades of
old SQLite files on SQLite only."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import StateError
from shared.state import KEY_TTL_S, AcceptedJob, Claim, open_submissions
from shared.state.submissions import MIGRATIONS, SqliteSubmissionLedger


def test_the_ledger_reserves_replays_conflicts_and_releases(state_settings: Settings) -> None:
    ledger = open_submissions(state_settings)
    assert ledger.reserve("k", "fp", "job-1").claim is Claim.NEW
    assert ledger.reserve("k", "fp", "job-2").claim is Claim.IN_PROGRESS
    ledger.accepted("job-1", "render", datetime.now(UTC), "k")
    replay = ledger.reserve("k", "fp", "job-3")
    assert (replay.claim, replay.job_id) == (Claim.REPLAY, "job-1")
    assert ledger.reserve("k", "other", "job-4").claim is Claim.CONFLICT
    assert ledger.reserve("k2", "fp", "job-5").claim is Claim.NEW
    ledger.release("k2", "job-5")
    assert ledger.reserve("k2", "fp", "job-6").claim is Claim.NEW
    found = ledger.find("job-1")
    assert found is not None and found.type == "render"
    assert found.submitted_at.tzinfo is not None
    assert ledger.find("job-9") is None
    ledger.close()


def test_the_ledger_keeps_a_job_in_doubt_for_its_key_until_accepted(
    state_settings: Settings,
) -> None:
    ledger = open_submissions(state_settings)
    assert ledger.reserve("k", "fp", "job-1").claim is Claim.NEW
    ledger.in_doubt("k", "job-1", '{"id": "job-1"}')
    retry = ledger.reserve("k", "fp", "job-2")
    assert (retry.claim, retry.job_id, retry.job) == (Claim.IN_DOUBT, "job-1", '{"id": "job-1"}')
    assert ledger.reserve("k", "other", "job-3").claim is Claim.CONFLICT
    ledger.accepted("job-1", "render", datetime.now(UTC), "k")
    assert ledger.reserve("k", "fp", "job-4").claim is Claim.REPLAY
    ledger.close()


def test_the_ledger_opens_a_database_from_before_jobs_in_doubt(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
            " job_id TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)"
        )
        old.execute("INSERT INTO idempotency_keys VALUES ('k', 'fp', 'job-1', 1, 1e12)")
    ledger = SqliteSubmissionLedger.open(path)
    assert ledger.reserve("k", "fp", "job-2").claim is Claim.REPLAY
    assert ledger.reserve("k2", "fp", "job-3").claim is Claim.NEW
    ledger.in_doubt("k2", "job-3", "{}")
    assert ledger.reserve("k2", "fp", "job-4").claim is Claim.IN_DOUBT


def test_a_database_of_the_last_release_before_schema_versions_upgrades_cleanly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.sqlite3"
    with sqlite3.connect(path) as old:  # the tables as the gateway's own module created them
        old.execute(
            "CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
            " job_id TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,"
            " in_doubt_job TEXT)"
        )
        old.execute("CREATE INDEX idempotency_keys_created ON idempotency_keys (created)")
        old.execute(
            "CREATE TABLE accepted_jobs (id TEXT PRIMARY KEY, type TEXT NOT NULL,"
            " submitted_at TEXT NOT NULL)"
        )
        old.execute("INSERT INTO idempotency_keys VALUES ('k', 'fp', 'job-1', 0, 1e12, '{}')")
        old.execute(
            "INSERT INTO accepted_jobs VALUES ('job-0', 'mail', '2024-05-01T10:00:00+00:00')"
        )
    ledger = SqliteSubmissionLedger.open(path)
    retry = ledger.reserve("k", "fp", "job-2")
    assert (retry.claim, retry.job_id, retry.job) == (Claim.IN_DOUBT, "job-1", "{}")
    found = ledger.find("job-0")
    assert found is not None and found.type == "mail"
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_the_store_is_a_file_under_the_state_dir_in_wal_mode(tmp_path: Path) -> None:
    ledger = open_submissions(Settings(state_dir=tmp_path / "state"))
    ledger.accepted("job-1", "render", datetime.now(UTC), None)
    ledger.close()
    with sqlite3.connect(tmp_path / "state" / "submissions.sqlite3") as db:
        assert db.execute("SELECT id FROM accepted_jobs").fetchall() == [("job-1",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_keys_are_forgotten_after_a_day(
    state_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = open_submissions(state_settings)
    assert ledger.reserve("k", "fp", "job-1").claim is Claim.NEW
    ledger.accepted("job-1", "render", datetime.now(UTC), "k")
    later = time.time() + KEY_TTL_S + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert ledger.reserve("k", "other", "job-2").claim is Claim.NEW
    assert ledger.reserve("k", "other", "job-3").claim is Claim.IN_PROGRESS
    ledger.close()


def test_a_closed_store_raises_state_errors(state_settings: Settings) -> None:
    ledger = open_submissions(state_settings)
    ledger.close()
    with pytest.raises(StateError, match="cannot reserve an idempotency key"):
        ledger.reserve("k", "fp", "job-1")
    with pytest.raises(StateError, match="cannot read the accepted jobs"):
        ledger.find("job-1")


def test_a_store_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StateError, match="cannot open the submissions database"):
        open_submissions(Settings(state_dir=tmp_path / "a-file"))


def test_mails_are_counted_per_client_within_the_window(state_settings: Settings) -> None:
    ledger = open_submissions(state_settings)
    now = datetime.now(UTC)
    ledger.accepted("m1", "mail", now - timedelta(minutes=61), None, "alice", mails=1)
    ledger.accepted("m2", "mail", now - timedelta(minutes=5), None, "alice", mails=1)
    ledger.accepted("r1", "render", now, None, "alice", mails=2)  # a render then mail, then mail
    ledger.accepted("m3", "mail", now, None, "bob", mails=1)
    assert ledger.mails_since("alice", now - timedelta(hours=1)) == 3
    assert ledger.mails_since("carol", now - timedelta(hours=1)) == 0
    found = ledger.find("r1")
    assert found is not None and found.client == "alice"
    ledger.close()


def test_jobs_accepted_together_are_each_found_and_counted(state_settings: Settings) -> None:
    ledger = open_submissions(state_settings)
    now = datetime.now(UTC)
    ledger.accepted_jobs(
        [
            AcceptedJob("r1", "render", now, "alice"),
            AcceptedJob("r2", "resize", now - timedelta(minutes=5), None),
            AcceptedJob("m1", "render", now, "alice", mails=2),
        ]
    )
    ledger.accepted_jobs([AcceptedJob("r1", "render", now, "alice")])  # again: still one
    twice = [AcceptedJob("r4", "render", now, "bob"), AcceptedJob("r4", "resize", now, "bob")]
    ledger.accepted_jobs(twice)  # one id twice in one batch: its last row
    assert ledger.find("r4") == AcceptedJob("r4", "resize", now, "bob")
    ledger.accepted_jobs([])
    assert ledger.find("r1") == AcceptedJob("r1", "render", now, "alice")
    assert ledger.find("r2") == AcceptedJob("r2", "resize", now - timedelta(minutes=5), None)
    assert ledger.find("m1") == AcceptedJob("m1", "render", now, "alice", mails=2)
    assert ledger.mails_since("alice", now - timedelta(hours=1)) == 2
    ledger.close()
    with pytest.raises(StateError, match="cannot record accepted jobs"):
        ledger.accepted_jobs([AcceptedJob("r3", "render", now, None)])
