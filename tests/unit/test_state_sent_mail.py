"""The sent-mail ledger: durable, keyed by job id, first record wins; one claim at a time on
sending a job's mail. The contract tests run on both backends (`state_settings`); the SQLite
file's own on SQLite only."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from shared.config import Settings
from shared.errors import StateError
from shared.ids import new_id
from shared.state import SENT_MAIL_FILE, open_sent_mail
from shared.state.sent_mail import MIGRATIONS, SendClaim, SentRecord, SqliteSentLedger


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


def test_one_mailer_at_a_time_may_send_a_jobs_mail(state_settings: Settings) -> None:
    first, second = open_sent_mail(state_settings), open_sent_mail(state_settings)
    job_id = new_id()
    try:
        mine = first.claim(job_id, "a", 60)
        assert isinstance(mine, SendClaim) and mine.holder == "a"
        assert mine.expires > datetime.now(UTC) + timedelta(seconds=50)

        held = second.claim(job_id, "b", 60)  # the other replica sees a's claim, and waits
        assert held == mine
        renewed = first.claim(job_id, "a", 120)  # a's own claim again: renewed
        assert isinstance(renewed, SendClaim) and renewed.holder == "a"
        assert renewed.expires > mine.expires

        entry = SentRecord(job_id, f"<{job_id}@jobsuite>", 1)
        first.record(entry)  # the mail is out: the claim ends, and every claim finds the record
        assert second.claim(job_id, "b", 60) == entry
        assert first.claim(job_id, "a", 60) == entry
    finally:
        first.close()
        second.close()


def test_a_released_claim_lets_another_mailer_send_at_once(state_settings: Settings) -> None:
    ledger = open_sent_mail(state_settings)
    job_id = new_id()
    ledger.claim(job_id, "a", 60)
    ledger.release(job_id, "b")  # not b's: nothing changes
    held = ledger.claim(job_id, "b", 60)
    assert isinstance(held, SendClaim) and held.holder == "a"

    ledger.release(job_id, "a")  # a's send failed before the server took the mail
    taken = ledger.claim(job_id, "b", 60)
    assert isinstance(taken, SendClaim) and taken.holder == "b"
    assert ledger.lookup(job_id) is None
    ledger.close()


def test_a_claim_past_its_lease_is_taken_over(state_settings: Settings) -> None:
    ledger = open_sent_mail(state_settings)
    job_id = new_id()
    ledger.claim(job_id, "crashed", 0.2)  # its holder died mid-send
    time.sleep(0.5)
    taken = ledger.claim(job_id, "b", 60)
    assert isinstance(taken, SendClaim) and taken.holder == "b"
    ledger.close()


def test_a_record_clears_the_claims_past_their_lease(state_settings: Settings) -> None:
    """A claim whose holder died and whose job never came back (dead-lettered, purged) is
    void; the next record of any job removes it, so such claims do not pile up."""
    ledger = open_sent_mail(state_settings)
    void, held, sent = new_id(), new_id(), new_id()
    ledger.claim(void, "crashed", 0.2)
    ledger.claim(held, "alive", 60)
    ledger.claim(sent, "alive", 60)
    time.sleep(0.5)
    assert _claimed(state_settings) == {void, held, sent}
    ledger.record(SentRecord(sent, f"<{sent}@jobsuite>", 1))
    assert _claimed(state_settings) == {held}
    ledger.close()


def _claimed(settings: Settings) -> set[str]:
    """The job ids with a row in the ledger's `sending` table, read past the store."""
    query = "SELECT job_id FROM sending"
    if settings.state_url:
        with psycopg.connect(settings.state_url) as db:
            return {row[0] for row in db.execute(query)}
    with closing(sqlite3.connect(settings.state_dir / SENT_MAIL_FILE)) as db:
        return {row[0] for row in db.execute(query)}


def test_a_claim_of_a_holder_known_to_have_died_is_taken_over(state_settings: Settings) -> None:
    ledger = open_sent_mail(state_settings)
    job_id = new_id()
    ledger.claim(job_id, "killed", 60)
    held = ledger.claim(job_id, "b", 60, replacing="someone-else")
    assert isinstance(held, SendClaim) and held.holder == "killed"
    taken = ledger.claim(job_id, "b", 60, replacing="killed")
    assert isinstance(taken, SendClaim) and taken.holder == "b"
    again = ledger.claim(job_id, "c", 60, replacing="killed")  # b's now: c waits
    assert isinstance(again, SendClaim) and again.holder == "b"
    ledger.close()


def test_of_many_mailers_claiming_one_job_at_once_exactly_one_holds_it(
    state_settings: Settings,
) -> None:
    ledgers = [open_sent_mail(state_settings) for _ in range(6)]
    job_id = new_id()
    start = threading.Barrier(len(ledgers))

    def claim(i: int) -> SentRecord | SendClaim:
        start.wait()
        return ledgers[i].claim(job_id, f"mailer-{i}", 60)

    try:
        with ThreadPoolExecutor(len(ledgers)) as pool:
            claims = list(pool.map(claim, range(len(ledgers))))
    finally:
        for ledger in ledgers:
            ledger.close()
    holders = {c.holder for c in claims if isinstance(c, SendClaim)}
    assert len(claims) == len(ledgers) and len(holders) == 1


def test_a_version_2_ledger_gains_the_claims_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "sent.sqlite3"
    with sqlite3.connect(path) as old:  # as the release before claims wrote it
        old.execute(
            "CREATE TABLE sent (job_id TEXT PRIMARY KEY, message_id TEXT NOT NULL,"
            " sent_at TEXT NOT NULL, recipients INTEGER NOT NULL, refused TEXT NOT NULL,"
            " client TEXT)"
        )
        old.execute(
            "INSERT INTO sent VALUES ('old', '<old@jobsuite>', '2024-05-01T10:00:00+00:00',"
            " 1, '{}', 'alice')"
        )
        old.execute("PRAGMA user_version = 2")
    ledger = SqliteSentLedger.open(path)
    earlier = ledger.claim("old", "a", 60)
    fresh = ledger.claim("new", "a", 60)
    ledger.close()
    assert isinstance(earlier, SentRecord) and earlier.client == "alice"
    assert isinstance(fresh, SendClaim) and fresh.holder == "a"
