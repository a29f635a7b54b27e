"""Hearing of every change to the API keys in PostgreSQL, so a process may keep the keys it has
read instead of a round trip per request (which halved the gateway's accept rate).

A trigger on `api_keys` (`install_trigger`) sends a notification on CHANNEL with every
statement that changes the table, whoever runs it (`jobsuite keys`, an older release, psql,
a replication apply worker: it fires ALWAYS). It is not one of the numbered migrations: an
older release, which refuses a schema newer than it knows, still opens the database (a
rolling upgrade), and it does no harm there. `KeyChanges` listens on a connection of its
own, in a thread: each notification moves its `generation` on, and keys kept at an older
generation are dropped.

Kept keys are used only while the listener is known to hear. Every HEARTBEAT_S it sends a
numbered notification on a channel of its own, from its own session, and only while the
trigger is there and fires always; it counts as hearing for FRESH_S after the sending of the
last one that came back. PostgreSQL delivers a session's notifications in commit order, so
every change committed before that heartbeat has been heard by then. A listener cut off
without a word (a dead path, a slow one, a suspended host) stops the keeping within FRESH_S
of its last heartbeat, and every request then reads its key from the database, as without
the listener; when it hears again, or the trigger's row changed (disabled and enabled again,
made anew), everything kept before is dropped. While the listener's socket holds bytes not
yet read, nothing kept is used either. A pooler in transaction mode gives no session of one's
own: a heartbeat sent by another backend than the one that listens is not counted, but
notifications lent out to other clients cannot be seen, so `STATE_URL` must reach the server
or a session-mode pool.
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
TRIGGER = "api_keys_changed"
# The trigger's row when it fires always (replica sessions too); its xmin changes with
# every ALTER of it (DISABLE, ENABLE) and it is a new row when made anew.
_TRIGGER_THERE = (
    f"FROM pg_trigger t WHERE t.tgname = '{TRIGGER}'"
    " AND t.tgrelid = to_regclass('api_keys') AND t.tgenabled = 'A'"
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
    f"ALTER TABLE api_keys ENABLE ALWAYS TRIGGER {TRIGGER}",
    # What changed while it was missing was never told: every listener drops what it kept.
    f"SELECT pg_notify('{CHANNEL}', '')",
)


def install_trigger(pool: Pool) -> None:
    """Put the trigger on `api_keys` unless it is there and fires always (under the
    migrations' lock, so processes starting together make it once); StateError when that
    fails."""
    with pool.statement("look for the API keys' trigger") as db:
        if db.execute(f"SELECT 1 {_TRIGGER_THERE}").fetchone():
            return
    with pool.transaction("make the API keys' trigger") as db:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if db.execute(f"SELECT 1 {_TRIGGER_THERE}").fetchone():
            return
        for statement in _INSTALL:
            db.execute(statement)  # type: ignore[arg-type]  # literal SQL, no parameters


def _now() -> float:
    """Seconds on a clock that also runs while the host is suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class KeyChanges:
    """The listener of one process, started by the first `generation()` in it: a forked
    child (a gateway worker) starts its own."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._generation = 0
        self._heard_at = float("-inf")  # when the last heartbeat that came back was sent
        self._beats = f"{CHANNEL}_{secrets.token_hex(8)}"  # this listener's own channel
        self._sent: dict[int, float] = {}  # heartbeats on their way: number -> sent at
        self._next_beat = 0
        self._backend = 0  # the pid of the server's process that listens
        self._trigger_row: str | None = None  # the trigger row's xmin at the last heartbeat
        self._pid: int | None = None
        self._stopped = threading.Event()
        self._socket = -1  # the listener's connection's descriptor while it has one

    def generation(self) -> int | None:
        """The count of changes heard so far, or None while the listener is not known to hear
        (just started, disconnected, its heartbeats lost): then nothing may be kept."""
        self._start_once()
        with self._lock:
            if not self._hearing() or self._unread(self._socket):
                return None
            return self._generation

    def close(self) -> None:
        self._stopped.set()

    def _hearing(self) -> bool:
        return _now() - self._heard_at <= FRESH_S

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
            except Exception as e:  # psycopg's, or a bug: either way, start again
                with self._lock:
                    self._heard_at = float("-inf")
                if self._stopped.is_set():  # closed meanwhile: its database may be gone too
                    return
                error = scrubbed(str(e), self._url)
                log.warning(
                    "api_key_changes_unheard",
                    url=masked(self._url),
                    error=error if isinstance(e, psycopg.Error) else f"{type(e).__name__}: {error}",
                    note="every request reads its key from the database until the listener is back",
                )
                self._stopped.wait(RECONNECT_S)

    def _hear_on(self, db: psycopg.Connection) -> None:
        db.execute("SET synchronous_commit = off")  # a heartbeat need not wait for the disk
        db.execute(f"LISTEN {CHANNEL}")
        db.execute(f"LISTEN {self._beats}")
        backend = db.execute("SELECT pg_backend_pid()").fetchone()
        with self._lock:
            self._generation += 1  # what changed while nobody listened is not known
            self._backend = backend[0] if backend else 0
            self._socket = db.fileno()
        try:
            while not self._stopped.is_set():
                self._beat(db)
                for notice in db.notifies(timeout=HEARTBEAT_S):
                    self._heard(notice)
        finally:
            with self._lock:
                self._socket = -1
                self._sent.clear()

    def _beat(self, db: psycopg.Connection) -> None:
        """Send the next heartbeat, if the trigger is there; those read meanwhile wait in
        psycopg's backlog for notifies()."""
        with self._lock:
            number = self._next_beat
            self._next_beat += 1
            self._sent[number] = _now()
        row = db.execute(
            f"SELECT t.xmin::text, pg_notify(%s, %s) {_TRIGGER_THERE}", (self._beats, str(number))
        ).fetchone()
        with self._lock:
            if row is None:
                self._sent.pop(number, None)  # no trigger, no heartbeat
            elif row[0] != self._trigger_row:
                self._trigger_row = row[0]
                self._generation += 1  # disabled and enabled again, made anew: changes untold

    def _heard(self, notice: psycopg.Notify) -> None:
        with self._lock:
            if notice.channel != self._beats:
                self._generation += 1
                return
            if notice.pid != self._backend:  # sent from another session: a pooler's doing
                return
            number = int(notice.payload)
            sent = self._sent.pop(number, None)
            for older in [n for n in self._sent if n < number]:
                del self._sent[older]
            if sent is None:
                return
            if not self._hearing():  # it did not hear for a while: what changed is untold
                self._generation += 1
            self._heard_at = max(self._heard_at, sent)
