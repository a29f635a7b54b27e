"""GATEWAY_WORKERS above 1: the gateway's port served by that many processes.

This process binds the port, makes the folder the workers share (their rate table and
metrics files, worker_share.py) and forks them before any thread starts; each builds its own
app (its own broker connections and state handles; the blob janitor in the first only) and
serves the inherited socket with uvicorn, the kernel giving each new connection to one of
them. SIGTERM or SIGINT here goes on to every worker, which finishes its requests as a lone
gateway does; this process exits once they all have (those still there after STOP_GRACE_S
are killed). A worker that dies once it has served is replaced (after RESPAWN_PAUSE_S when
it died that soon after its start); one that dies before (a bad setting, the state store
unreachable: EXIT_CONFIG; no server: EXIT_STARTUP; any other failure) stops the gateway
with its exit code, as a lone gateway would have stopped. A worker says it serves with a
file in the shared folder (`WorkerShare.mark_serving`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from services.gateway.worker_share import WorkerShare
from shared.log import get_logger
from shared.multiprocess_metrics import forget_process

log = get_logger("services.gateway")

RESPAWN_PAUSE_S = 1.0
STOP_GRACE_S = 20  # a worker's own graceful shutdown (10 s), then its app's close
EXIT_STARTUP = 3  # the port cannot be had (uvicorn's code for a server that did not start)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGALRM}

ServeOne = Callable[[socket.socket, WorkerShare], int]
"""One worker: serve the socket until told to stop; the process's exit code."""


def listening_socket(host: str, port: int) -> socket.socket:
    """The gateway's port, bound and listening, for the workers to inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve_in_workers(host: str, port: int, workers: int, serve_one: ServeOne) -> int:
    """The gateway as `workers` processes on `host`:`port`, each running `serve_one`; the
    exit code for this process."""
    try:
        sock = listening_socket(host, port)
    except OSError as e:
        log.error("gateway_port_unavailable", host=host, port=port, error=str(e))
        return EXIT_STARTUP
    try:
        folder = Path(tempfile.mkdtemp(prefix="jobsuite-gateway-"))
    except OSError as e:  # no writable TMPDIR (a read-only container without a tmpfs)
        sock.close()
        log.error("gateway_worker_folder_unavailable", tmpdir=tempfile.gettempdir(), error=str(e))
        return EXIT_STARTUP
    try:
        WorkerShare(folder, 0).prepare()
        return _Supervisor(sock, folder, workers, serve_one).run()
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class _Worker:
    index: int
    started: float


class _Supervisor:
    def __init__(
        self, sock: socket.socket, folder: Path, workers: int, serve_one: ServeOne
    ) -> None:
        self._sock = sock
        self._folder = folder
        self._count = workers
        self._serve_one = serve_one
        self._pid = os.getpid()
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._exit_code = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGALRM, self._kill_the_rest)
        for index in range(self._count):
            if self._stopping:
                break
            self._start(index)
        while self._workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:  # none left (each already waited for)
                break
            self._exited(pid, os.waitstatus_to_exitcode(status))
        signal.alarm(0)
        return self._exit_code

    def _exited(self, pid: int, code: int) -> None:
        worker = self._workers.pop(pid, None)
        if worker is None:
            return
        share = WorkerShare(self._folder, worker.index)
        served = share.has_served(pid)
        forget_process(share.metrics_folder, pid)
        share.forget(pid)
        if self._stopping:
            return
        if not served:  # EXIT_CONFIG, EXIT_STARTUP and any failure before serving
            log.error("gateway_worker_failed_to_start", worker=worker.index, pid=pid, code=code)
            self._fail(code if code > 0 else 1)
            return
        log.error("gateway_worker_exited_replacing_it", worker=worker.index, pid=pid, code=code)
        if time.monotonic() - worker.started < RESPAWN_PAUSE_S:
            time.sleep(RESPAWN_PAUSE_S)  # no tight loop of a worker failing at once
            if self._stopping:
                return
        self._start(worker.index)

    def _fail(self, code: int) -> None:
        self._exit_code = code
        self._stop(signal.SIGTERM, None)

    def _start(self, index: int) -> None:
        # Signals wait until the child has our handlers off, and unflushed output is written
        # once, not by both processes.
        sys.stdout.flush()
        sys.stderr.flush()
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child(index)  # never returns
            self._workers[pid] = _Worker(index, time.monotonic())
        except OSError as e:  # no process to be had (EAGAIN, ENOMEM)
            log.error("gateway_worker_not_started", worker=index, error=str(e))
            self._fail(1)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        log.info("gateway_worker_started", worker=index, pid=pid)
        if self._stopping:  # told to stop while this one was being made
            _signal(pid, signal.SIGTERM)

    def _child(self, index: int) -> None:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            # A group of its own: a terminal's Ctrl-C reaches the first process alone, which
            # passes a SIGTERM on (two signals would make uvicorn skip its graceful stop).
            os.setpgid(0, 0)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            _stop_with_parent(self._pid)
            code = self._serve_one(self._sock, WorkerShare(self._folder, index))
        except KeyboardInterrupt:  # SIGINT sent to this worker itself: a stop like SIGTERM
            code = 0
        except BaseException:
            log.exception("gateway_worker_crashed", worker=index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            return  # the kill deadline stands from the first signal
        log.info("gateway_stopping", signal=signal.Signals(signum).name)
        self._stopping = True
        self._sock.close()  # new connections are refused now, not left in the backlog
        for pid in self._workers:
            _signal(pid, signal.SIGTERM)
        signal.alarm(STOP_GRACE_S)

    def _kill_the_rest(self, signum: int, frame: FrameType | None) -> None:
        for pid, worker in self._workers.items():
            log.error("gateway_worker_killed_after_grace", worker=worker.index, pid=pid)
            _signal(pid, signal.SIGKILL)


def _stop_with_parent(parent: int) -> None:
    """SIGTERM to this worker when the gateway's process (`parent`) dies (killed with SIGKILL,
    say), so no worker is left serving the port on its own (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited, not yet waited for
        os.kill(pid, signum)
