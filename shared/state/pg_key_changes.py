"""Hearing of every change to the API keys in PostgreSQL, so a process may keep the keys it has
read instead of a round trip per request (which halved the gateway's accept rate).

A trigger on `api_keys` (`install_trigger`) sends a notification on CHANNEL with every
statement that changes the table, whoever runs it (`jobsuite keys`, an older release, psql).
It is not one of the numbered migrations: an older release, which refuses a schema newer than
it knows, still opens the database (a rolling upgrade), and it does no harm there.
`KeyChanges` listens on a connection of its own, in a thread: each notification moves its
`generation` on, and keys kept at an older generation are dropped.

Kept keys are used only while the listener is known to hear: every HEARTBEAT_S it sends a
notification of its own on its connection, and it counts as hearing for FRESH_S after the
last one came back. The heartbeat is sent only while the trigger is there and enabled, so
without it nothing is kept either. So a listener cut off without a word (a dead path, a pooler in
transaction mode that does not pass LISTEN on) stops the keeping within FRESH_S, and every
request then reads its key from the database, as without the listener. A notification the
server sent before a heartbeat comes back is read before it, on the same connection: a
revocation is in force within milliseconds while the listener hears, within FRESH_S at most.
While the listener's socket holds bytes not yet read (a notification, maybe, that the thread
has not had its turn to read), nothing kept is used either.
"""

from __future__ import annotations

import os
import secrets
import select
import threading
import time

import psycopg

from shared.log import get_logger
from shared.state.pg_url import masked
from shared.state.postgres import MIGRATION_LOCK, Pool, connection_options, scrubbed

log = get_logger(__name__)

CHANNEL = "jobsuite_api_keys"
HEARTBEAT_S = 0.5
FRESH_S = 2.0
RECONNECT_S = 1.0  # after a failed connection, before the next attempt
_BEAT = "beat:"  # the heartbeats' payload prefix; the trigger's payload is empty
TRIGGER = "api_keys_changed"
_TRIGGER_THERE = (
    f"FROM pg_trigger WHERE tgname = '{TRIGGER}'"
    " AND tgrelid = to_regclass('api_keys') AND tgenabled <> 'D'"
)
_INSTALL = (
    f"""CREATE OR REPLACE FUNCTION jobsuite_api_keys_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$""",
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON api_keys",
    f"""CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION jobsuite_api_keys_changed()""",
)


def install_trigger(pool: Pool) -> None:
    """Put the trigger on `api_keys` unless it is there (under the migrations' lock, so
    processes starting together make it once); StateError when that fails."""
    with pool.statement("look for the API keys' trigger") as db:
        if db.execute(f"SELECT 1 {_TRIGGER_THERE}").fetchone():
            return
    with pool.transaction("make the API keys' trigger") as db:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if db.execute(f"SELECT 1 {_TRIGGER_THERE}").fetchone():
            return
        for statement in _INSTALL:
            db.execute(statement)  # type: ignore[arg-type]  # literal SQL, no parameters


class KeyChanges:
    """The listener of one process, started by the first `generation()` in it: a forked
    child (a gateway worker) starts its own."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._generation = 0
        self._heard_at = float("-inf")  # monotonic time the last own heartbeat came back
        self._me = _BEAT + secrets.token_hex(8)
        self._pid: int | None = None
        self._stopped = threading.Event()
        self._socket = -1  # the listener's connection's descriptor while it has one

    def generation(self) -> int | None:
        """The count of changes heard so far, or None while the listener is not known to hear
        (just started, disconnected, its heartbeats lost): then nothing may be kept."""
        self._start_once()
        with self._lock:
            if time.monotonic() - self._heard_at > FRESH_S or self._unread(self._socket):
                return None
            return self._generation

    def close(self) -> None:
        self._stopped.set()

    @staticmethod
    def _unread(socket: int) -> bool:
        """Whether the listener's socket holds what it has not read yet (a notification on
        its way to `_heard`, maybe): no connection at all counts as such."""
        if socket < 0:
            return True
        waiting = select.poll()
        waiting.register(socket, select.POLLIN)
        return bool(waiting.poll(0))

    def _start_once(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid
            self._heard_at = float("-inf")  # a parent's listener is not this process's
        threading.Thread(target=self._listen, name="api-key-changes", daemon=True).start()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._url, **connection_options(self._url)) as db:  # type: ignore[arg-type]
                    self._hear_on(db)
            except psycopg.Error as e:
                with self._lock:
                    self._heard_at = float("-inf")
                if self._stopped.is_set():  # closed meanwhile: its database may be gone too
                    return
                log.warning(
                    "api_key_changes_unheard",
                    url=masked(self._url),
                    error=scrubbed(str(e), self._url),
                    note="every request reads its key from the database until the listener is back",
                )
                self._stopped.wait(RECONNECT_S)

    def _hear_on(self, db: psycopg.Connection) -> None:
        db.execute(f"LISTEN {CHANNEL}")
        with self._lock:
            self._generation += 1  # what changed while nobody listened is not known
            self._socket = db.fileno()
        try:
            while not self._stopped.is_set():
                # Those read meanwhile wait in psycopg's backlog for notifies().
                db.execute(f"SELECT pg_notify(%s, %s) {_TRIGGER_THERE}", (CHANNEL, self._me))
                for notice in db.notifies(timeout=HEARTBEAT_S):
                    self._heard(notice)
        finally:
            with self._lock:
                self._socket = -1

    def _heard(self, notice: psycopg.Notify) -> None:
        with self._lock:
            if notice.payload == self._me:
                self._heard_at = time.monotonic()
            elif not notice.payload.startswith(_BEAT):  # another listener's heartbeat
                self._generation += 1
