"""The sent-mail ledger: durable, keyed by job id, first record wins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.mailer.ledger import LedgerError, SentRecord, SqliteLedger
from shared.messages import new_id


def test_a_recorded_job_is_found_again_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger" / "sent.sqlite3"
    job_id = new_id()
    entry = SentRecord(job_id, f"<{job_id}@jobsuite>", 2, {"x@example.com": "550 no such user"})
    ledger = SqliteLedger.open(path)
    assert ledger.lookup(job_id) is None
    ledger.record(entry)
    ledger.close()

    reopened = SqliteLedger.open(path)
    assert reopened.lookup(job_id) == entry
    assert reopened.lookup(new_id()) is None


def test_the_ledger_runs_in_wal_mode(tmp_path: Path) -> None:
    SqliteLedger.open(tmp_path / "sent.sqlite3").close()
    with sqlite3.connect(tmp_path / "sent.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_first_record_of_a_job_is_kept(tmp_path: Path) -> None:
    ledger = SqliteLedger.open(tmp_path / "sent.sqlite3")
    job_id = new_id()
    ledger.record(SentRecord(job_id, "<first@jobsuite>", 1))
    ledger.record(SentRecord(job_id, "<second@jobsuite>", 1))
    found = ledger.lookup(job_id)
    assert found is not None and found.message_id == "<first@jobsuite>"


def test_a_ledger_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(LedgerError, match="cannot open the mail ledger"):
        SqliteLedger.open(tmp_path / "a-file" / "sent.sqlite3")


def test_a_closed_ledger_raises_ledger_errors(tmp_path: Path) -> None:
    ledger = SqliteLedger.open(tmp_path / "sent.sqlite3")
    ledger.close()
    with pytest.raises(LedgerError):
        ledger.lookup(new_id())
    with pytest.raises(LedgerError):
        ledger.record(SentRecord(new_id(), "<x@jobsuite>", 1))
