"""An upgrade from before STATE_DIR keeps what the old files knew: the day's Idempotency-Keys
and, above all, the mail already sent."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import ConfigError
from shared.state import (
    LEGACY_SENT_MAIL,
    LEGACY_SUBMISSIONS,
    SentRecord,
    open_sent_mail,
    open_submissions,
)
from shared.state.submissions import Claim


def old_gateway_database(path: Path) -> None:
    """The gateway's database as the release before STATE_DIR wrote it, with one key."""
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
                job_id TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
            CREATE TABLE accepted_jobs (id TEXT PRIMARY KEY, type TEXT NOT NULL,
                submitted_at TEXT NOT NULL);
            """
        )
        db.execute(
            "INSERT INTO idempotency_keys VALUES ('k1', 'fp', 'job-1', 1, ?)",
            (datetime.now(UTC).timestamp(),),
        )


def test_the_gateways_old_database_beside_the_blobs_is_taken_over(tmp_path: Path) -> None:
    settings = Settings(blob_dir=tmp_path / "blobs", state_dir=tmp_path / "state")
    old_gateway_database(settings.blob_dir / LEGACY_SUBMISSIONS)
    ledger = open_submissions(settings)
    try:
        assert ledger.reserve("k1", "fp", "job-2").claim is Claim.REPLAY  # remembered
        assert (settings.state_dir / "submissions.sqlite3").is_file()
    finally:
        ledger.close()


def test_the_mailers_old_ledger_is_taken_over_so_nothing_is_sent_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the old default was relative to the working folder
    settings = Settings(state_dir=tmp_path / "state")
    LEGACY_SENT_MAIL.parent.mkdir(parents=True)
    with sqlite3.connect(LEGACY_SENT_MAIL) as db:
        db.execute(
            "CREATE TABLE sent (job_id TEXT PRIMARY KEY, message_id TEXT NOT NULL,"
            " sent_at TEXT NOT NULL, recipients INTEGER NOT NULL, refused TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO sent VALUES ('job-1', '<job-1@jobsuite>', ?, 1, '{}')",
            (datetime.now(UTC).isoformat(),),
        )
    ledger = open_sent_mail(settings)
    try:
        found = ledger.lookup("job-1")
        assert isinstance(found, SentRecord) and found.message_id == "<job-1@jobsuite>"
    finally:
        ledger.close()
    assert os.path.exists(LEGACY_SENT_MAIL)  # the old file stays where it was


def test_a_new_state_file_is_never_replaced_by_an_old_one(tmp_path: Path) -> None:
    settings = Settings(blob_dir=tmp_path / "blobs", state_dir=tmp_path / "state")
    open_submissions(settings).close()
    old_gateway_database(settings.blob_dir / LEGACY_SUBMISSIONS)
    ledger = open_submissions(settings)
    try:
        assert ledger.reserve("k1", "fp", "job-2").claim is Claim.NEW
    finally:
        ledger.close()


@pytest.mark.parametrize("name", ["GATEWAY_DB", "MAILER_LEDGER"])
def test_a_removed_variable_is_one_clear_error_not_silently_ignored(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} is no longer read: .*STATE_DIR"):
        Settings.from_env({name: "/data/old.sqlite3"})
