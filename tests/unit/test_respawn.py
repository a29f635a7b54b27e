"""shared.respawn's decisions against real short-lived processes: which endings are started
again, which are passed on, and a crash loop given up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shared import respawn
from shared.exit_codes import EXIT_JOB_STUCK
from shared.respawn import Respawner, exit_code, should_restart


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture(autouse=True)
def no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(respawn, "RESTART_DELAY_S", 0.0)


def test_which_endings_are_started_again() -> None:
    assert should_restart(EXIT_JOB_STUCK, forwarded=False)
    assert should_restart(-9, forwarded=False)  # killed by a signal nobody passed on
    assert not should_restart(0, forwarded=False)
    assert not should_restart(78, forwarded=False)  # e.g. a configuration error
    assert not should_restart(EXIT_JOB_STUCK, forwarded=True)  # a stop was asked for
    assert (exit_code(0), exit_code(70), exit_code(-15)) == (0, 70, 143)


def test_a_clean_ending_or_an_error_is_passed_on_at_once() -> None:
    assert Respawner(python("raise SystemExit(3)")).run() == 3
    assert Respawner(python("pass")).run() == 0


def test_a_stuck_exit_is_started_again_until_the_service_ends_by_itself(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # Exits 70 twice, then 0: three starts, and the last ending is the answer.
    code = (
        f"from pathlib import Path; p = Path({str(runs)!r}); "
        "n = len(p.read_text()) if p.exists() else 0; p.write_text('x' * (n + 1)); "
        f"raise SystemExit({EXIT_JOB_STUCK} if n < 2 else 0)"
    )
    respawner = Respawner(python(code))
    assert respawner.run() == 0
    assert runs.read_text() == "xxx"


def test_a_service_killed_by_a_signal_is_started_again() -> None:
    respawner = Respawner(python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert respawner.run() == 128 + 9  # killed every time: a crash loop, given up
    assert len(respawner.starts) == respawn.MAX_RESTARTS + 1


def test_a_crash_loop_is_given_up() -> None:
    respawner = Respawner(python(f"raise SystemExit({EXIT_JOB_STUCK})"))
    assert respawner.run() == EXIT_JOB_STUCK
    assert len(respawner.starts) == respawn.MAX_RESTARTS + 1
