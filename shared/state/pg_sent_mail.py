"""The SentLedger in PostgreSQL (STATE_URL), shared by mailer replicas on any host.

The same rules as `SqliteSentLedger`: a record is committed (and, with PostgreSQL's default
`synchronous_commit=on`, flushed) when `record` returns; a job id recorded already keeps its
first record (`ON CONFLICT DO NOTHING`).
"""

from __future__ import annotations

import json

from shared.state.postgres import PgMigration, Pool, open_pool, pg_statements
from shared.state.sent_mail import SentRecord, record_from_row

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
]


class PostgresSentLedger:
    """The SentLedger in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, url: str) -> PostgresSentLedger:
        return cls(open_pool(url, migrations=MIGRATIONS, store=STORE, what="the mail ledger"))

    def lookup(self, job_id: str) -> SentRecord | None:
        with self._pool.transaction("read the mail ledger") as db:
            row = db.execute(
                "SELECT message_id, sent_at, recipients, refused, client FROM sent"
                " WHERE job_id = %s",
                (job_id,),
            ).fetchone()
        return None if row is None else record_from_row(job_id, row)

    def record(self, entry: SentRecord) -> None:
        with self._pool.transaction("write the mail ledger") as db:
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
