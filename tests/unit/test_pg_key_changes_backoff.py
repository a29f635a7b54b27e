"""The API-key listener (shared/state/pg_key_changes.py) waits longer after each failure in a
row, so a misconfiguration that fails every time (a pooler in transaction mode, a server
refusing it) does not flood the log; while it fails, nothing may be kept."""

from __future__ import annotations

import itertools
import os
import signal
import time

import psycopg
import pytest

from shared.state import pg_key_changes
from shared.state.pg_key_changes import KeyChanges


def test_failures_in_a_row_are_tried_again_ever_more_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[float] = []

    def refused(*_args: object, **_kwargs: object) -> psycopg.Connection:
        attempts.append(time.monotonic())
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(pg_key_changes.psycopg, "connect", refused)
    monkeypatch.setattr(pg_key_changes, "RECONNECT_S", 0.05)
    monkeypatch.setattr(pg_key_changes, "RECONNECT_MOST_S", 0.4)
    changes = KeyChanges("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert changes.generation() is None  # starts the listener; it never hears
        time.sleep(1.6)
        assert changes.generation() is None
    finally:
        changes.close()
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(attempts)]
    # 0.05, 0.1, 0.2, then 0.4 each: 7 or so attempts, where a fixed pause makes 30
    assert 5 <= len(attempts) <= 9, gaps
    assert gaps[:3] == sorted(gaps[:3]) and max(gaps) < 0.5, gaps


def _exit_code_within(pid: int, seconds: float) -> int | None:
    """The child's exit code, or None (and the child killed) if it has not ended by then."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_child_forked_while_the_listener_held_its_lock_starts_its_own() -> None:
    """A gateway worker forked at the wrong moment: the parent's listener thread held the
    lock, which in the child no thread would ever release."""
    changes = KeyChanges("postgresql://nobody@127.0.0.1:1/none")
    parents_beats = changes._beats
    changes._socket, changes._sent = 999, (7, 0.0)  # as a parent's that listens
    try:
        with changes._lock:  # as the parent's listener thread may hold it at the fork
            pid = os.fork()
            if pid == 0:  # the child: it must not wait for a lock nobody will release
                code = 3  # it raised
                try:
                    afresh = (changes._socket, changes._sent) == (-1, None)
                    own_channel = changes._beats != parents_beats
                    code = 4 if not (afresh and own_channel) else 0
                    code = code or (0 if changes.generation() is None else 2)
                finally:
                    os._exit(code)
        assert _exit_code_within(pid, 5) == 0, (
            "the child hung on its parent's lock, or kept its state"
        )
    finally:
        changes._socket, changes._sent = -1, None
        changes.close()
