"""A fresh PostgreSQL database per test, for the state stores with STATE_URL.

The server is the local one (`deploy/ensure-postgres.sh` starts it for `make test`), trust
auth as user postgres; JOBSUITE_TEST_POSTGRES names another (a URL to its `postgres`
database). A server that does not answer fails the test with a clear line: never a skip."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

SERVER_URL = os.environ.get(
    "JOBSUITE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class PostgresUnavailable(Exception):
    pass


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as e:
        raise PostgresUnavailable(
            f"PostgreSQL does not answer at {SERVER_URL} (JOBSUITE_TEST_POSTGRES): {e}"
            " — start it (deploy/ensure-postgres.sh)"
        ) from None


def database_url(name: str) -> str:
    parts = urlsplit(SERVER_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database `jobsuite_t_<hex>`, dropped afterwards (its
    connections ended first)."""
    name = f"jobsuite_t_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(name)
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def query(url: str, statement: str) -> list[tuple[object, ...]]:
    """Rows of one statement, run straight on the database (what a test looks at)."""
    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(statement)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []
