"""`make run | tee log` in a terminal, as a person runs it: logs for people, one ready line
with the URLs, and a Ctrl-C that leaves nothing running (it once left honcho and every
service behind: tee died of the same Ctrl-C and honcho's next line raised BrokenPipeError)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from tests.support.broker import TestBroker
from tests.support.ports import free_port
from tests.support.processes import processes_of, service_env

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)


class Terminal:
    """A shell command on a pseudo-terminal of its own, as the foreground job of a login:
    a Ctrl-C typed there reaches every process of the pipeline."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()

        def own_terminal() -> None:  # in the child, a session leader: make it its terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=own_terminal,
        )
        os.close(slave)
        self.output = b""

    def read_until(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text()):
            if time.monotonic() > deadline or not self.pump(0.2):
                raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.text()[-4000:]}")
        return self.text()

    def pump(self, wait: float) -> bool:
        """Read what is there; False once the terminal is closed and the shell has ended."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has ended
                return self.proc.poll() is None
        return True

    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def run_env(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`make run`'s environment for this test: its namespace, free ports, its own folders
    (HOME is the test's own: `make run` writes the key file there)."""
    env = service_env(settings)  # the namespace, folders and queue arguments of `broker`
    for name in ("LOG_FORMAT", "AUDIT_API_KEY", "JOBSUITE_API_KEY"):
        env.pop(name, None)
    gateway, audit, http, smtp = free_port(), free_port(), free_port(), free_port()
    env.update(
        AUDIT_DIR=str(tmp_path / "audit"),
        MAILSINK_DIR=str(tmp_path / "mail"),
        GATEWAY_PORT=str(gateway),
        AUDIT_PORT=str(audit),
        AUDIT_URL=f"http://localhost:{audit}",
        MAILSINK_HTTP_PORT=str(http),
        MAILSINK_SMTP_PORT=str(smtp),
        SMTP_PORT=str(smtp),
        PYTHONPATH=str(ROOT),  # this tree's packages, whatever the venv was installed from
        TERM="dumb",
    )
    yield env
    for pid in processes_of(settings.namespace):  # only what this test started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_make_run_piped_through_tee_and_leaves_nothing_running(
    run_env: dict[str, str], settings: Settings, broker: TestBroker, tmp_path: Path
) -> None:
    make = shutil.which("make")
    assert make, "make is needed"
    log = tmp_path / "run.log"
    # The venv of this interpreter, not remade (-o: its stamp counts as up to date).
    command = (
        f"{make} --no-print-directory -o {VENV}/.installed VENV={VENV} run SCALE=resizer=2"
        f" | tee {log}"
    )
    terminal = Terminal(command, run_env)
    try:
        gateway = f"http://localhost:{run_env['GATEWAY_PORT']}"
        text = terminal.read_until(r"jobsuite is ready: .*\n", timeout=120)
        running = processes_of(settings.namespace)
        services = [c for c in running.values() if re.match(r"\S*python[\d.]* -m services\.", c)]
        assert len(services) == 7, running  # gateway, 2 resizers, renderer, mailer, sink, audit

        # Logs for people (not JSON), start-up quiet, and the one ready line with the URLs.
        assert not re.search(r'\| \{"', text), text
        assert "publisher_connected" not in text
        assert text.count("publishers_connected") == 1, text
        (ready,) = re.findall(r"jobsuite is ready: .*", text)
        assert f"gateway {gateway} (API docs {gateway}/docs)" in ready
        assert f"console http://localhost:{run_env['AUDIT_PORT']}/" in ready
        assert f"mail view http://localhost:{run_env['MAILSINK_HTTP_PORT']}/" in ready

        terminal.pump(1.0)  # a person reads the line first: the output is idle
        terminal.type(b"\x03")  # Ctrl-C
        deadline = time.monotonic() + 30
        while terminal.pump(0.2) and time.monotonic() < deadline:
            pass
        left: dict[int, str] = {}
        for _ in range(50):  # a moment for the last ones to be reaped
            left = processes_of(settings.namespace)
            if not left:
                break
            time.sleep(0.2)
        assert left == {}, f"still running after Ctrl-C:\n{left}\n{terminal.text()[-3000:]}"
        assert terminal.proc.wait(5) != 0  # make says "Interrupt"
        assert "jobsuite is ready" in log.read_text()  # tee got the lines until it died
    finally:
        terminal.close()
