"""`python -m shared.run_local [-c resizer=4,renderer=2]`: the suite as local processes, what
`make run` runs: honcho's process manager on the `Procfile`, with three changes.

- Services log for people (`LOG_FORMAT=console`, unless LOG_FORMAT is set): their output is
  a pipe to honcho, so they would pick JSON.
- One more process, `jobsuite`, prints one line when every service answers, and where
  (shared/readiness.py).
- Output that can no longer be written (`make run | tee log`: the same Ctrl-C kills tee)
  stops the suite. honcho's own printer raises BrokenPipeError there, inside its signal
  handler, before it has stopped anything, and leaves every service running.
- A stop asked for while the processes are still being started waits until they are.
- A process it stopped reads "stopped", not "stopped (rc=-15)", which looks like a failure.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from honcho.environ import expand_processes, parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer


class ClosablePrinter(Printer):  # type: ignore[misc]
    """honcho's printer; when its output is gone it calls `on_closed` once and then prints
    nowhere, rather than raising out of whatever was printing."""

    def __init__(self, output: TextIO, on_closed: Callable[[], None]) -> None:
        super().__init__(output)
        self.on_closed = on_closed
        self.closed = False

    def write(self, message: Any) -> None:
        if self.closed:
            return
        try:
            super().write(message)
        except (BrokenPipeError, ValueError):  # ValueError: written to a closed file
            self.closed = True
            _discard(self.output)
            self.on_closed()


# What honcho prints for a process that ended on the SIGTERM it sent.
_STOPPED_BY_US = f" stopped (rc=-{signal.SIGTERM.value})\n"


class SuiteManager(Manager):  # type: ignore[misc]
    """honcho's manager, but a stop asked for before every process has started (a Ctrl-C, or
    the output closed, in the first moments) waits for their pids and then stops them all:
    honcho 2's own `terminate` raises KeyError on a process whose pid it has not been told
    yet, and leaves everything running. Overrides two private methods (honcho is pinned <3)."""

    def __init__(self, printer: Printer) -> None:
        super().__init__(printer)
        self._stop_pending = False

    def terminate(self) -> None:
        if not self._all_started():
            self._stop_pending = True
            return
        super().terminate()

    def _system_print(self, data: str) -> None:
        if self._terminating and data.endswith(_STOPPED_BY_US):
            data = data.removesuffix(_STOPPED_BY_US) + " stopped\n"
        # The loop prints "<name> started (pid=…)" once it knows that pid: the moment to stop.
        super()._system_print(data)
        if self._stop_pending and self._all_started():
            self._stop_pending = False
            super().terminate()


def _discard(output: TextIO) -> None:
    """Point the output's file at /dev/null, so that what is still buffered, and the flush
    at exit, go nowhere instead of failing again (as the Python docs advise for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, output.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def parse_concurrency(text: str | None) -> dict[str, int]:
    """`resizer=4,renderer=2` (honcho's and `make run SCALE=`'s form) → {"resizer": 4, …}."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit():
            raise SystemExit(f"run_local: expected NAME=COUNT in -c, got {item!r}")
        out[name.strip()] = int(count)
    return out


def child_env(environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    env.setdefault("LOG_FORMAT", "console")
    env.setdefault("PYTHONUNBUFFERED", "1")  # lines as they come, not when a buffer fills
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.run_local")
    parser.add_argument("-c", "--concurrency", help="NAME=COUNT,… replicas per process")
    parser.add_argument("-f", "--procfile", default="Procfile", type=Path)
    args = parser.parse_args(argv)

    procfile = parse_procfile(args.procfile.read_text()).processes
    concurrency = parse_concurrency(args.concurrency)
    unknown = set(concurrency) - set(procfile)
    if unknown:
        raise SystemExit(f"run_local: no {', '.join(sorted(unknown))} in {args.procfile}")

    manager = SuiteManager(ClosablePrinter(sys.stdout, on_closed=lambda: manager.terminate()))
    env = child_env(dict(os.environ))
    for p in expand_processes(procfile, concurrency=concurrency):
        manager.add_process(p.name, p.cmd, env={**env, **p.env})

    replicas = ",".join(f"{name}={concurrency.get(name, 1)}" for name in procfile)
    manager.add_process(
        "jobsuite", f"{shlex.quote(sys.executable)} -m shared.readiness {replicas}", env=env
    )
    manager.loop()
    code = manager.returncode or 0
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


if __name__ == "__main__":
    raise SystemExit(main())
