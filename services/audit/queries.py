"""The read side of the SQLite read model: one connection per reading thread (WAL lets them
read while the writer writes). The queries themselves are `model_reader.py`'s."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import nullcontext
from pathlib import Path

from services.audit.model_reader import SqlQueries
from services.audit.model_sql import SQLITE
from services.audit.readmodel import SqliteSql, connect


class Queries(SqlQueries):
    def __init__(self, path: Path) -> None:
        super().__init__(SQLITE)
        self.path = path
        self._local = threading.local()

    def _reading(self) -> nullcontext[SqliteSql]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path, readonly=True)
        return nullcontext(SqliteSql(db))

    def close(self) -> None:
        """Nothing: each thread's connection is closed with its thread."""
