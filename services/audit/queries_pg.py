"""The read side of the read model in PostgreSQL: each query a short transaction on a
connection from the pool (threads share it). The queries themselves are `model_reader.py`'s."""

from __future__ import annotations

from contextlib import AbstractContextManager

from services.audit.model_reader import SqlQueries
from services.audit.readmodel_pg import PgSql, PgTables, PoolSql, open_model_pool
from shared.state.postgres import Pool


class PostgresQueries(SqlQueries):
    def __init__(self, pool: Pool, tables: PgTables) -> None:
        super().__init__(tables.dialect())
        self._sql = PoolSql(pool)

    @classmethod
    def open(cls, url: str, namespace: str) -> PostgresQueries:
        tables = PgTables.of(namespace)
        return cls(open_model_pool(url, tables), tables)

    def _reading(self) -> AbstractContextManager[PgSql]:
        return self._sql("read the audit read model")

    def close(self) -> None:
        self._sql.pool.close()
