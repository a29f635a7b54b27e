"""Hearing of every change to the API keys in PostgreSQL, so a process may keep the keys it has
read instead of a round trip per request (which halved the gateway's accept rate).

Two triggers on `api_keys` (`install_trigger`) send a notification on CHANNEL with every
change to the table, whoever makes it (`jobsuite keys`, an older release, psql): one for
each row inserted, updated or deleted (a logical replication's apply worker fires row
triggers only; PostgreSQL merges a transaction's identical notifications into one), one for
TRUNCATE. They fire ALWAYS, so a session with `session_replication_role = replica` notifies
too. They are not one of the numbered migrations: an older release, which refuses a schema
newer than it knows, still opens the database (a rolling upgrade), and they do no harm
there. `KeyChanges` listens on a connection of its own, in a thread: each notification moves
its `generation` on, and keys kept at an older generation are dropped.

Kept keys are used only while the listener is known to hear. Every HEARTBEAT_S it sends a
numbered notification on a channel of its own, from its own session, and only while both
triggers are there and fire always; it counts as hearing for FRESH_S after the sending of
the last one that came back. PostgreSQL delivers notifications in commit order, so every
change committed before that heartbeat has been heard by then. A listener cut off without a
word (a dead path, a slow one, a suspended host) stops the keeping within FRESH_S of its
last heartbeat, and every request then reads its key from the database, as without the
listener. When it hears again, or the triggers' rows changed (disabled and enabled again,
made anew), everything kept before is dropped; a function replaced by another body counts as
no trigger at all.
While the listener's socket holds bytes not yet read, nothing kept is used either.

`STATE_URL` must reach the primary itself or a session-mode pool. A pooler in transaction
mode lends the listening session to other clients, who then get its notifications: a
heartbeat from another backend is not counted and a backend that changes under the listener
ends its connection, but a revocation handed to another client while the same backend comes
back is not seen, and kept keys would outlive it. That set-up is not supported.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref

import psycopg

from shared.log import get_logger
from shared.state.pg_url import masked
from shared.state.postgres import (
    MIGRATION_LOCK,
    Pool,
    connection_options,
    readable,
    scrubbed,
)

log = get_logger(__name__)

CHANNEL = "jobsuite_api_keys"
HEARTBEAT_S = 0.5
FRESH_S = 2.0
# After a failed connection, before the next attempt: doubled after each failure in a row
# (a misconfiguration, such as a pooler in transaction mode, fails every time), up to the most.
RECONNECT_S = 1.0
RECONNECT_MOST_S = 30.0
SERVED_LONG_S = 60.0  # a connection that lasted this long ends a run of failures
TRIGGERS = ("api_keys_changed", "api_keys_truncated")
# The triggers' rows, one row in all when both are there, fire always and call the function
# as made here, with no WHEN (one replaced by a body that does not notify, or a trigger of
# the name that fires otherwise, would leave the heartbeats going and changes untold).
# `version` changes with every ALTER of a trigger (DISABLE, ENABLE: a new row version, a new
# xmin) and when one is made anew.
# pg_trigger.tgtype: FOR EACH ROW 1, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32 (AFTER: 0).
_EACH_ROW_CHANGED = 1 | 4 | 8 | 16
_TRUNCATED = 32
_BODY = f"""
    BEGIN
        PERFORM pg_notify('{CHANNEL}', '');
        RETURN NULL;
    END
"""
_TRIGGERS_THERE = f"""FROM (
    SELECT string_agg(t.tgname || ':' || t.xmin || ':' || p.xmin, ',' ORDER BY t.tgname)
        AS version, count(*) AS found
    FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE t.tgrelid = to_regclass('api_keys') AND t.tgenabled = 'A' AND t.tgqual IS NULL
        AND p.prosrc = $body${_BODY}$body$
        AND ((t.tgname = '{TRIGGERS[0]}' AND t.tgtype = {_EACH_ROW_CHANGED})
            OR (t.tgname = '{TRIGGERS[1]}' AND t.tgtype = {_TRUNCATED}))
) triggers WHERE triggers.found = 2"""
_INSTALL = (
    "CREATE OR REPLACE FUNCTION jobsuite_api_keys_changed() RETURNS trigger"
    f" LANGUAGE plpgsql AS $${_BODY}$$",
    *(f"DROP TRIGGER IF EXISTS {name} ON api_keys" for name in TRIGGERS),
    f"""CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT OR UPDATE OR DELETE ON api_keys
        FOR EACH ROW EXECUTE FUNCTION jobsuite_api_keys_changed()""",
    f"""CREATE TRIGGER {TRIGGERS[1]} AFTER TRUNCATE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION jobsuite_api_keys_changed()""",
    *(f"ALTER TABLE api_keys ENABLE ALWAYS TRIGGER {name}" for name in TRIGGERS),
    # What changed while they were missing was never told: every listener drops what it kept.
    f"SELECT pg_notify('{CHANNEL}', '')",
)


def install_trigger(pool: Pool) -> None:
    """Put the triggers on `api_keys` unless they are there and fire always (under the
    migrations' lock, so processes starting together make them once); StateError when that
    fails."""
    with pool.statement("look for the API keys' trigger") as db:
        if db.execute(f"SELECT 1 {_TRIGGERS_THERE}").fetchone():
            return
    with pool.transaction("make the API keys' trigger") as db:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if db.execute(f"SELECT 1 {_TRIGGERS_THERE}").fetchone():
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
        # The heartbeat on its way (number, sent at): its echo comes back within the
        # statement that sends it, so there is one at most.
        self._sent: tuple[int, float] | None = None
        self._next_beat = 0
        self._backend = 0  # the pid of the server's process that listens
        self._triggers: str | None = None  # the triggers' version at the last heartbeat
        self._trigger_seen = True  # at the last heartbeat (warned once when they go)
        self._pid: int | None = None
        self._stopped = threading.Event()
        self._socket = -1  # the listener's connection's descriptor while it has one
        _LISTENERS.add(self)  # last: a fork's hook finds it whole

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

    def forked(self) -> None:
        """In a forked child, before anything else runs there: the child has none of its
        parent's threads, so a lock one of them held would stay held for good, and the
        listener's connection is the parent's. It starts afresh, not hearing until its own
        thread does."""
        self._lock = threading.Lock()
        self._beats = f"{CHANNEL}_{secrets.token_hex(8)}"  # not its parent's channel
        stopped, self._stopped = self._stopped, threading.Event()
        if stopped.is_set():  # closed stays closed
            self._stopped.set()
        self._socket = -1
        self._sent = None
        self._heard_at = float("-inf")
        self._pid = None

    def changed(self) -> None:
        """This process changed a key: whatever was read before is old, at once."""
        with self._lock:
            self._generation += 1

    def _hearing(self) -> bool:
        return _now() - self._heard_at <= FRESH_S

    @staticmethod
    def _unread(socket: int) -> bool:
        """Whether the listener's socket holds what it has not read yet (a notification on
        its way to `_heard`, maybe): no connection at all counts as such."""
        return socket < 0 or readable(socket)

    def _start_once(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid  # a forked child's was reset by forked(), with what it heard
        threading.Thread(target=self._listen, name="api-key-changes", daemon=True).start()

    def _listen(self) -> None:
        pause = RECONNECT_S
        while not self._stopped.is_set():
            began = time.monotonic()
            try:
                with psycopg.connect(self._url, **connection_options(self._url)) as db:  # type: ignore[arg-type]
                    self._hear_on(db)
            except Exception as e:  # psycopg's, or a bug: either way, start again
                if time.monotonic() - began > SERVED_LONG_S:  # not a failure in a row
                    pause = RECONNECT_S
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
                self._stopped.wait(pause)
                pause = min(2 * pause, RECONNECT_MOST_S)

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
                self._sent = None

    def _beat(self, db: psycopg.Connection) -> None:
        """Send the next heartbeat, if the trigger is there; those read meanwhile wait in
        psycopg's backlog for notifies()."""
        with self._lock:
            number = self._next_beat
            self._next_beat += 1
            self._sent = (number, _now())
        row = db.execute(
            f"SELECT triggers.version, pg_backend_pid(), pg_notify(%s, %s) {_TRIGGERS_THERE}",
            (self._beats, str(number)),
        ).fetchone()
        with self._lock:
            if row is None:
                self._sent = None  # no trigger, no heartbeat
            else:
                version, backend = row[0], row[1]
                if backend != self._backend:  # a pooler lent the session out meanwhile
                    raise psycopg.OperationalError(
                        "the listening session moved to another server process (a pooler"
                        " in transaction mode?): keys are read on every request"
                    )
                if version != self._triggers:
                    self._triggers = version
                    self._generation += 1  # disabled and enabled, made anew: changes untold
        if row is None and self._trigger_seen:
            log.warning(
                "api_key_change_triggers_missing",
                note="every request reads its key from the database until a service starts"
                " and makes them again (after pg_restore --disable-triggers they fire for ordinary"
                " sessions only)",
            )
        self._trigger_seen = row is not None

    def _heard(self, notice: psycopg.Notify) -> None:
        with self._lock:
            if notice.channel != self._beats:
                self._generation += 1
                return
            if notice.pid != self._backend:  # sent from another session: a pooler's doing
                return
            if self._sent is None or notice.payload != str(self._sent[0]):
                return  # an older one's late echo: the newer one's counts
            if not self._hearing():  # it did not hear for a while: what changed is untold
                self._generation += 1
            self._heard_at = self._sent[1]
            self._sent = None


_LISTENERS: weakref.WeakSet[KeyChanges] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for changes in _LISTENERS:
        try:
            changes.forked()
        except Exception:  # one listener's trouble leaves the others to be made afresh
            log.exception("api_key_listener_not_reset_after_fork")


os.register_at_fork(after_in_child=_after_fork_in_child)
