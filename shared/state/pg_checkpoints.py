"""The CheckpointStore in PostgreSQL (STATE_URL): the same append-only rows as
`SqliteCheckpointStore`, numbered by an identity column (ids only grow, so `ORDER BY id` is
the order they were written in, per log: the audit log has one writer)."""

from __future__ import annotations

from dataclasses import replace

from shared.state.checkpoints import Checkpoint
from shared.state.postgres import PgMigration, Pool, open_pool, pg_statements

STORE = "checkpoints"

MIGRATIONS: list[PgMigration] = [
    pg_statements(
        """CREATE TABLE IF NOT EXISTS checkpoints (
            id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            log       TEXT NOT NULL,
            seq       BIGINT NOT NULL,
            hash      TEXT NOT NULL,
            base_seq  BIGINT NOT NULL,
            base_hash TEXT NOT NULL,
            reason    TEXT NOT NULL,
            at        TEXT NOT NULL,
            audit_dir TEXT NOT NULL,
            key_id    TEXT,
            signature TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS checkpoints_log ON checkpoints (log, id)",
    ),
]
_COLUMNS = "log, seq, hash, base_seq, base_hash, reason, at, audit_dir, key_id, signature, id"


class PostgresCheckpointStore:
    """The CheckpointStore in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, url: str) -> PostgresCheckpointStore:
        return cls(open_pool(url, migrations=MIGRATIONS, store=STORE, what="the audit checkpoints"))

    def add(self, cp: Checkpoint) -> Checkpoint:
        with self._pool.transaction("write an audit checkpoint") as db:
            row = db.execute(
                f"INSERT INTO checkpoints ({_COLUMNS.removesuffix(', id')})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    cp.log,
                    cp.seq,
                    cp.hash,
                    cp.base_seq,
                    cp.base_hash,
                    cp.reason,
                    cp.at,
                    cp.audit_dir,
                    cp.key_id,
                    cp.signature,
                ),
            ).fetchone()
        return replace(cp, id=int(row[0]) if row else 0)

    def latest(self, log: str) -> Checkpoint | None:
        with self._pool.transaction("read the audit checkpoints") as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE log = %s ORDER BY id DESC LIMIT 1",
                (log,),
            ).fetchone()
        return Checkpoint(*row) if row else None

    def history(self, log: str) -> list[Checkpoint]:
        with self._pool.transaction("read the audit checkpoints") as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE log = %s ORDER BY id",
                (log,),
            ).fetchall()
        return [Checkpoint(*row) for row in rows]

    def drop_before(self, log: str, seq: int) -> int:
        with self._pool.transaction("prune the audit checkpoints") as db:
            cursor = db.execute(
                "DELETE FROM checkpoints WHERE log = %s AND seq < %s AND reason <> 'prune'"
                " AND id <> (SELECT MIN(id) FROM checkpoints WHERE log = %s)",
                (log, seq, log),
            )
        return cursor.rowcount

    def close(self) -> None:
        self._pool.close()
