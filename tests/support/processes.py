"""Services as real processes (`python -m …`), with their logs kept for the assertions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AMQP_URL=settings.amqp_url,
        AMQP_HEARTBEAT=str(settings.amqp_heartbeat),
        JOBSUITE_NAMESPACE=settings.namespace,
        BLOB_DIR=str(settings.blob_dir),
        STATE_DIR=str(settings.state_dir),
        RETRY_DELAYS_MS=",".join(str(d) for d in settings.retry_delays_ms),
        MAX_DELIVERIES=str(settings.max_deliveries),
        TASK_QUEUE_MAX_LENGTH=str(settings.task_queue_max_length),
        LOG_FORMAT="json",
        LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def processes_of(namespace: str) -> dict[int, str]:
    """Every process whose environment holds JOBSUITE_NAMESPACE=<namespace>: make, the
    shells, honcho and its helpers, every service (pid → command line)."""
    marker = f"JOBSUITE_NAMESPACE={namespace}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found[int(entry.name)] = cmdline.strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


class ServiceProcess:
    """One running service; stdout (JSON log lines) goes to a file next to the test's data."""

    def __init__(
        self,
        module: str,
        env: dict[str, str],
        log_path: Path,
        args: tuple[str, ...] = (),
        cwd: Path = ROOT,
    ) -> None:
        self.module = module
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=cwd,  # `python -m` imports the packages of the tree it starts in
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"event": "raw", "text": raw})
        return lines

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line.get("event") == event]

    def wait_logged(self, event: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.logged(event)) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.module} exited ({self.proc.returncode}):\n{self.tail()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"{self.module} did not log {event!r} x{count}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def retry_delays_in(env: dict[str, str]) -> set[int]:
    """The back-off steps of RETRY_DELAYS_MS in `env`; none of a value a test made bad."""
    steps = env.get("RETRY_DELAYS_MS", "").split(",")
    return {int(step) for step in steps if step.strip().isdigit()}


class Spawner:
    """Starts services of one namespace as processes, logs beside each other; `stop_all`.
    `cwd` is the source tree they run from (the benchmarks start another checkout's)."""

    def __init__(self, settings: Settings, log_dir: Path, cwd: Path = ROOT) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.cwd = cwd
        self.started: list[ServiceProcess] = []
        # Every back-off step a service was started with: each declares a retry queue the
        # namespace's clean-up must delete too.
        self.retry_delays: set[int] = set(settings.retry_delays_ms)

    def __call__(
        self, module: str, *args: str, settings_override: Settings | None = None, **env: str
    ) -> ServiceProcess:
        s = settings_override or self.settings
        log_path = self.log_dir / f"{module.rsplit('.', 1)[-1]}-{len(self.started)}.log"
        service = service_env(s, **env)
        self.retry_delays.update(retry_delays_in(service))
        proc = ServiceProcess(module, service, log_path, args, self.cwd)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()
