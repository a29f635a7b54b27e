"""`python -m shared.respawn <module> [args…]`: run a service and start it again when it ends
the way a supervisor should answer. For `make run`: honcho stops every process as soon as one
ends, where compose's `restart: unless-stopped` would start the one that ended again.

Started again: exit 70 (a job thread that could not be interrupted, `shared/worker/job_thread.py`)
and death by a signal this process did not pass on (the OOM killer's SIGKILL, say). Anything
else (a clean stop, a configuration error) ends this process with the service's own code.
SIGTERM and SIGINT are passed on once, so the service finishes its job in hand as usual; it
runs in a process group of its own, so a Ctrl-C in the terminal reaches it only that way.
More than MAX_RESTARTS within RESTART_WINDOW_S is a crash loop: it gives up.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections import deque
from types import FrameType

from shared.config import settings_or_exit
from shared.exit_codes import EXIT_JOB_STUCK
from shared.log import configure_logging, get_logger

log = get_logger(__name__)
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
RESTART_DELAY_S = 1.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when this process dies, even by SIGKILL, so no
    service is left running without its supervisor (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it: death by signal N is 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def should_restart(returncode: int, forwarded: bool) -> bool:
    if forwarded:  # asked to stop: whatever the service answered is the answer
        return False
    return returncode == EXIT_JOB_STUCK or returncode < 0


class Respawner:
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.child: subprocess.Popen[bytes] | None = None
        self.forwarded = False
        self.starts: deque[float] = deque()

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.forwarded = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        while True:
            self.starts.append(time.monotonic())
            self.child = subprocess.Popen(
                self.command, process_group=0, preexec_fn=_die_with_parent
            )
            returncode = self.child.wait()
            if not should_restart(returncode, self.forwarded):
                return exit_code(returncode)
            while self.starts and self.starts[0] < time.monotonic() - RESTART_WINDOW_S:
                self.starts.popleft()
            if len(self.starts) > MAX_RESTARTS:
                log.error("crash_loop_giving_up", command=self.command, exit_code=returncode)
                return exit_code(returncode)
            log.warning("service_ended_restarting", command=self.command, exit_code=returncode)
            time.sleep(RESTART_DELAY_S)
            if self.forwarded:  # a stop asked for while waiting to restart
                return exit_code(returncode)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m shared.respawn <module> [args...]", file=sys.stderr)
        return 2
    settings = settings_or_exit()
    configure_logging("respawn", settings.log_level, settings.log_format)
    respawner = Respawner([sys.executable, "-m", *argv])
    signal.signal(signal.SIGTERM, respawner.on_signal)
    signal.signal(signal.SIGINT, respawner.on_signal)
    return respawner.run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
