"""The SentLedger in PostgreSQL (STATE_URL), shared by mailer replicas on any host.

The same rules as `SqliteSentLedger`: a record is committed (and, with PostgreSQL's default
`synchronous_commit=on`, flushed) when `record` returns; a job id recorded already keeps its
first record (`ON CONFLICT DO NOTHING`); one holder's claim at a time on sending a job's
mail, timed by the database's clock (replicas on other hosts may not agree on theirs).
"""

from __future__ import annotations

import json

import psycopg

from shared.state.postgres import PgMigration, Pool, open_pool, pg_statements
from shared.state.sent_mail import SendClaim, SentRecord, record_from_row

STORE = "sent_mail"

MIGRATIONS: list[PgMigration] = [
    pg_statements(
        """CREATE TABLE IF NOT EXISTS sent (
            job_id     TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,
            sent_at    TEXT NOT NULL,
            recipients INTEGER NOT NULL,
            refused    TEXT NOT NULL,
            client     TEXT
        )"""
    ),
    pg_statements(
        """CREATE TABLE IF NOT EXISTS sending (
            job_id  TEXT PRIMARY KEY,
            holder  TEXT NOT NULL,
            expires TIMESTAMPTZ NOT NULL
        )"""
    ),
]
_SENT_ROW = "SELECT message_id, sent_at, recipients, refused, client FROM sent WHERE job_id = %s"


class PostgresSentLedger:
    """The SentLedger in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, url: str) -> PostgresSentLedger:
        return cls(open_pool(url, migrations=MIGRATIONS, store=STORE, what="the mail ledger"))

    def lookup(self, job_id: str) -> SentRecord | None:
        with self._pool.transaction("read the mail ledger") as db:
            row = db.execute(_SENT_ROW, (job_id,)).fetchone()
        return None if row is None else record_from_row(job_id, row)

    def claim(
        self, job_id: str, holder: str, lease_s: float, replacing: str | None = None
    ) -> SentRecord | SendClaim:
        with self._pool.transaction("claim the mail's sending") as db:
            _one_at_a_time(db, job_id)
            row = db.execute(_SENT_ROW, (job_id,)).fetchone()
            if row is not None:
                return record_from_row(job_id, row)
            taken = db.execute(
                "INSERT INTO sending (job_id, holder, expires)"
                " VALUES (%s, %s, now() + make_interval(secs => %s))"
                " ON CONFLICT (job_id) DO UPDATE"
                " SET holder = EXCLUDED.holder, expires = EXCLUDED.expires"
                " WHERE sending.expires <= now() OR sending.holder IN (EXCLUDED.holder, %s)"
                " RETURNING holder, expires",
                (job_id, holder, lease_s, replacing),
            ).fetchone()
            if taken is None:  # another holder's claim, not expired (held by the lock above)
                taken = db.execute(
                    "SELECT holder, expires FROM sending WHERE job_id = %s", (job_id,)
                ).fetchone()
                assert taken is not None, "a claim vanished under the job's lock"
        return SendClaim(taken[0], taken[1])

    def release(self, job_id: str, holder: str) -> None:
        with self._pool.transaction("release the mail's claim") as db:
            db.execute("DELETE FROM sending WHERE job_id = %s AND holder = %s", (job_id, holder))

    def record(self, entry: SentRecord) -> None:
        with self._pool.transaction("write the mail ledger") as db:
            _one_at_a_time(db, entry.job_id)
            # As on SQLite: the job's claim ends, and every claim past its lease goes (a row
            # another mailer takes over meanwhile is rechecked after its lock: not deleted).
            db.execute("DELETE FROM sending WHERE job_id = %s OR expires <= now()", (entry.job_id,))
            db.execute(
                "INSERT INTO sent (job_id, message_id, sent_at, recipients, refused, client)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING",
                (
                    entry.job_id,
                    entry.message_id,
                    entry.sent_at.isoformat(),
                    entry.recipients,
                    json.dumps(entry.refused),
                    entry.client,
                ),
            )

    def close(self) -> None:
        self._pool.close()


def _one_at_a_time(db: psycopg.Connection, job_id: str) -> None:
    """The job's claims and its record, one transaction at a time (on every host): a claim
    then sees the record of one that committed first, and its own look and claim stand
    together. A lock for the transaction, keyed by the job id's hash (collisions only wait)."""
    db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (job_id,))
