"""A claim's holder names its process well enough for a mailer on the same machine (same
boot, same pid namespace) to tell that it ended, and no more: anything else counts alive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from services.mailer.holders import holder_gone, this_holder


def ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_holder_names_this_process_and_each_claim_apart() -> None:
    first, second = this_holder(), this_holder()
    assert first != second
    host, pid, machine, _ = first.rsplit(":", 3)
    assert int(pid) == os.getpid() and machine and host


def test_a_holder_whose_process_ended_on_this_machine_is_gone() -> None:
    host, _, machine, token = this_holder().rsplit(":", 3)
    assert holder_gone(f"{host}:{ended_pid()}:{machine}:{token}")


def test_a_holder_that_ended_but_is_not_reaped_yet_is_gone() -> None:
    """Killed, its parent not yet waiting for it (a zombie): the broker has its job back."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        host, _, machine, token = this_holder().rsplit(":", 3)
        assert holder_gone(f"{host}:{child.pid}:{machine}:{token}")
    finally:
        child.wait()


def test_a_living_holder_and_this_process_are_not_gone() -> None:
    assert not holder_gone(this_holder())
    host, _, machine, token = this_holder().rsplit(":", 3)
    assert not holder_gone(f"{host}:{os.getppid()}:{machine}:{token}")


def test_a_holder_this_process_cannot_judge_counts_as_alive() -> None:
    host, _, machine, token = this_holder().rsplit(":", 3)
    pid = ended_pid()
    boot, namespace = machine.split(".")
    other_boot = ("1" if boot.startswith("0") else "0") + boot[1:]
    for other in (f"{boot}.1", f"{other_boot}.{namespace}", ""):  # another namespace or boot
        assert not holder_gone(f"{host}:{pid}:{other}:{token}")
    for garbage in ("", "a:b", f"{host}:x{pid}:{machine}:{token}", "mailer-1"):
        assert not holder_gone(garbage)
