"""The sent-mail ledger: durable, keyed by job id, first record wins. The contract tests run
on both backends (`state_settings`); the SQLite file's own on SQLite only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import StateError
from shared.ids import new_id
from shared.state import open_sent_mail
from shared.state.sent_mail import MIGRATIONS, SentRecord, SqliteSentLedger


def test_a_recorded_job_is_found_again_after_reopening(state_settings: Settings) -> None:
    job_id = new_id()
    entry = SentRecord(job_id, f"<{job_id}@jobsuite>", 2, {"x@example.com": "550 no such user"})
    ledger = open_sent_mail(state_settings)
    assert ledger.lookup(job_id) is None
    ledger.record(entry)
    ledger.close()

    reopened = open_sent_mail(state_settings)
    assert reopened.lookup(job_id) == entry
    assert reopened.lookup(new_id()) is None
    reopened.close()


def test_the_ledger_runs_in_wal_mode(tmp_path: Path) -> None:
    SqliteSentLedger.open(tmp_path / "sent.sqlite3").close()
    with sqlite3.connect(tmp_path / "sent.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_first_record_of_a_job_is_kept(state_settings: Settings) -> None:
    ledger = open_sent_mail(state_settings)
    job_id = new_id()
    ledger.record(SentRecord(job_id, "<first@jobsuite>", 1, client="alice"))
    ledger.record(SentRecord(job_id, "<second@jobsuite>", 1))
    found = ledger.lookup(job_id)
    assert found is not None and found.message_id == "<first@jobsuite>"
    assert found.client == "alice"
    ledger.close()


def test_a_ledger_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StateError, match="cannot open the mail ledger"):
        SqliteSentLedger.open(tmp_path / "a-file" / "sent.sqlite3")


def test_a_closed_ledger_raises_ledger_errors(state_settings: Settings) -> None:
    ledger = open_sent_mail(state_settings)
    ledger.close()
    with pytest.raises(StateError):
        ledger.lookup(new_id())
    with pytest.raises(StateError):
        ledger.record(SentRecord(new_id(), "<x@jobsuite>", 1))


def test_the_ledger_is_a_file_under_the_state_dir_committed_with_full_sync(
    tmp_path: Path,
) -> None:
    ledger = open_sent_mail(Settings(state_dir=tmp_path / "state"))
    job_id = new_id()
    ledger.record(SentRecord(job_id, "<x@jobsuite>", 1))
    ledger.close()
    with sqlite3.connect(tmp_path / "state" / "sent-mail.sqlite3") as db:
        assert db.execute("SELECT job_id FROM sent").fetchall() == [(job_id,)]
    reopened = SqliteSentLedger.open(tmp_path / "state" / "sent-mail.sqlite3")
    assert reopened._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    reopened.close()


def test_a_ledger_written_before_schema_versions_opens_with_its_records(tmp_path: Path) -> None:
    path = tmp_path / "sent.sqlite3"
    with sqlite3.connect(path) as old:  # as the mailer's own ledger module created it
        old.execute(
            "CREATE TABLE sent (job_id TEXT PRIMARY KEY, message_id TEXT NOT NULL,"
            " sent_at TEXT NOT NULL, recipients INTEGER NOT NULL, refused TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO sent VALUES ('job-1', '<job-1@jobsuite>', '2024-05-01T10:00:00+00:00',"
            " 1, '{}')"
        )
    ledger = SqliteSentLedger.open(path)
    found = ledger.lookup("job-1")
    assert found is not None and found.message_id == "<job-1@jobsuite>"
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_a_record_keeps_the_mail_jobs_client_and_a_version_1_ledger_gains_the_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sent.sqlite3"
    with sqlite3.connect(path) as old:  # as the release before clients wrote it
        old.execute(
            "CREATE TABLE sent (job_id TEXT PRIMARY KEY, message_id TEXT NOT NULL,"
            " sent_at TEXT NOT NULL, recipients INTEGER NOT NULL, refused TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO sent VALUES ('old', '<old@jobsuite>', '2024-05-01T10:00:00+00:00',"
            " 1, '{}')"
        )
        old.execute("PRAGMA user_version = 1")
    ledger = SqliteSentLedger.open(path)
    job_id = new_id()
    ledger.record(SentRecord(job_id, "<x@jobsuite>", 1, client="alice"))
    found, earlier = ledger.lookup(job_id), ledger.lookup("old")
    ledger.close()
    assert found is not None and found.client == "alice"
    assert earlier is not None and earlier.client is None
