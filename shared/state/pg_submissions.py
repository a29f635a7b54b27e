"""The SubmissionLedger in PostgreSQL (STATE_URL), shared by gateway replicas on any host.

The same rules as `SqliteSubmissionLedger`. Where SQLite takes its one write lock
(`BEGIN IMMEDIATE`), a reservation here relies on the key's primary key: two replicas
inserting the same key at once wait on each other, `ON CONFLICT DO NOTHING` lets exactly one
in, and the other reads the winner's row. Expired keys other than this one are swept with
`SKIP LOCKED`, so two sweeps never wait on (or deadlock with) each other. Should the
winner's row be released before the loser reads it, the loser tries again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from shared.errors import StateError
from shared.state.postgres import PgMigration, Pool, open_pool, pg_statements
from shared.state.submissions import KEY_TTL_S, AcceptedJob, Claim, Reservation

STORE = "submissions"
SWEEP = 500  # expired keys forgotten per reservation, at most
_ACCEPTED_COLUMNS = "(id, type, submitted_at, client, mails)"
_ON_CONFLICT = (
    "ON CONFLICT (id) DO UPDATE SET type = EXCLUDED.type, submitted_at = EXCLUDED.submitted_at,"
    " client = EXCLUDED.client, mails = EXCLUDED.mails"
)

MIGRATIONS: list[PgMigration] = [
    pg_statements(
        """CREATE TABLE IF NOT EXISTS idempotency_keys (
            key TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            job_id TEXT NOT NULL,
            done BOOLEAN NOT NULL DEFAULT FALSE,
            created DOUBLE PRECISION NOT NULL,
            in_doubt_job TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created)",
        """CREATE TABLE IF NOT EXISTS accepted_jobs (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            submitted_at TIMESTAMPTZ NOT NULL,
            client TEXT,
            mails INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS accepted_jobs_by_client"
        " ON accepted_jobs (client, submitted_at)",
    ),
]


class PostgresSubmissionLedger:
    """The SubmissionLedger in PostgreSQL; every call one short transaction."""

    writes_wait_on_server = True

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, url: str) -> PostgresSubmissionLedger:
        return cls(
            open_pool(url, migrations=MIGRATIONS, store=STORE, what="the submissions database")
        )

    def close(self) -> None:
        self._pool.close()

    def reserve(self, key: str, fingerprint: str, job_id: str) -> Reservation:
        for _ in range(3):
            claimed = self._try_reserve(key, fingerprint, job_id)
            if claimed is not None:
                return claimed
        raise StateError(f"cannot reserve an idempotency key: {key!r} keeps changing hands")

    def _try_reserve(self, key: str, fingerprint: str, job_id: str) -> Reservation | None:
        """The reservation, or None when the row that kept ours out was gone before we read
        it (its publish failed and it was released in between): then try again."""
        expired = time.time() - KEY_TTL_S
        with self._pool.transaction("reserve an idempotency key") as db:
            db.execute(
                "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys"
                " WHERE created < %s AND key <> %s LIMIT %s FOR UPDATE SKIP LOCKED)",
                (expired, key, SWEEP),
            )
            db.execute(
                "DELETE FROM idempotency_keys WHERE key = %s AND created < %s", (key, expired)
            )
            inserted = db.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, job_id, created)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (key, fingerprint, job_id, time.time()),
            ).rowcount
            row = db.execute(
                "SELECT fingerprint, job_id, done, in_doubt_job FROM idempotency_keys"
                " WHERE key = %s",
                (key,),
            ).fetchone()
        if inserted:
            return Reservation(Claim.NEW, job_id)
        if row is None:
            return None
        earlier_fingerprint, earlier_id, done, in_doubt_job = row
        if earlier_fingerprint != fingerprint:
            return Reservation(Claim.CONFLICT, earlier_id)
        if done:
            return Reservation(Claim.REPLAY, earlier_id)
        if in_doubt_job is not None:
            return Reservation(Claim.IN_DOUBT, earlier_id, in_doubt_job)
        return Reservation(Claim.IN_PROGRESS, earlier_id)

    def release(self, key: str, job_id: str) -> None:
        with self._pool.transaction("release an idempotency key") as db:
            db.execute("DELETE FROM idempotency_keys WHERE key = %s AND job_id = %s", (key, job_id))

    def in_doubt(self, key: str, job_id: str, job: str) -> None:
        with self._pool.transaction("keep a job in doubt") as db:
            db.execute(
                "UPDATE idempotency_keys SET in_doubt_job = %s WHERE key = %s AND job_id = %s",
                (job, key, job_id),
            )

    def accepted(
        self,
        job_id: str,
        job_type: str,
        submitted_at: datetime,
        key: str | None,
        client: str | None = None,
        mails: int = 0,
    ) -> None:
        with self._pool.transaction("record an accepted job") as db:
            db.execute(
                f"INSERT INTO accepted_jobs {_ACCEPTED_COLUMNS} VALUES (%s, %s, %s, %s, %s)"
                f" {_ON_CONFLICT}",
                (job_id, job_type, _aware(submitted_at), client, mails),
            )
            if key is not None:
                db.execute(
                    "UPDATE idempotency_keys SET done = TRUE, in_doubt_job = NULL"
                    " WHERE key = %s AND job_id = %s",
                    (key, job_id),
                )

    def accepted_jobs_at_once(self, jobs: Sequence[AcceptedJob]) -> bool:
        return False  # every write waits on the server: the gateway writes from a thread

    def accepted_jobs(self, jobs: Sequence[AcceptedJob]) -> None:
        # One statement, whatever the count (atomic, one round trip, 5 parameters): an id
        # given twice keeps its last row, as ON CONFLICT DO UPDATE may not touch a row twice.
        latest = list({j.id: j for j in jobs}.values())
        if not latest:
            return
        columns = (
            [j.id for j in latest],
            [j.type for j in latest],
            [_aware(j.submitted_at) for j in latest],
            [j.client for j in latest],
            [j.mails for j in latest],
        )
        with self._pool.statement("record accepted jobs") as db:
            db.execute(
                f"INSERT INTO accepted_jobs {_ACCEPTED_COLUMNS} SELECT * FROM unnest("
                "%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::integer[])"
                f" {_ON_CONFLICT}",
                columns,
            )

    def find(self, job_id: str) -> AcceptedJob | None:
        with self._pool.statement("read the accepted jobs") as db:
            row = db.execute(
                "SELECT id, type, submitted_at, client, mails FROM accepted_jobs WHERE id = %s",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return AcceptedJob(row[0], row[1], row[2].astimezone(UTC), row[3], row[4])

    def mails_since(self, client: str, since: datetime) -> int:
        with self._pool.statement("count accepted mails") as db:
            row = db.execute(
                "SELECT COALESCE(SUM(mails), 0) FROM accepted_jobs"
                " WHERE client = %s AND submitted_at >= %s",
                (client, _aware(since)),
            ).fetchone()
        return int(row[0]) if row else 0


def _aware(moment: datetime) -> datetime:
    """A naive time is UTC, as SQLite's ledger takes it."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
