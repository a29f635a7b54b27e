"""GATEWAY_WORKERS above 1: the gateway's port served by that many processes.

This process binds the port, makes the folder the workers share (their rate table and
metrics files, worker_share.py) and forks them before any thread starts; each builds its own
app (its own broker connections and state handles; the blob janitor in the first only) and
serves the inherited socket with uvicorn, the kernel giving each new connection to one of
them. SIGTERM, SIGINT or SIGHUP here goes on to every worker as a SIGTERM, and each finishes
its requests as a lone gateway does; this process exits once they all have (those still
there after STOP_GRACE_S are killed). A worker that dies once it has served is replaced
(after RESPAWN_PAUSE_S when it died that soon after its start); one that dies before (a bad
setting, the state store unreachable: EXIT_CONFIG; no server: EXIT_STARTUP; any other
failure) stops the gateway with its exit code, as a lone gateway would have stopped. A
worker says it serves with a file in the shared folder (`WorkerShare.mark_serving`).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import select
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
_STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}  # SIGHUP: the terminal closed
_SIGNALS = {*_STOPS, signal.SIGCHLD}

ServeOne = Callable[[list[socket.socket], WorkerShare], int]
"""One worker: serve the sockets until told to stop; the process's exit code."""


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """The gateway's port on each address `host` names, bound and listening, for the workers
    to inherit: as one uvicorn process binds it (asyncio's `create_server`), so `""` is every
    interface of both families and an IPv6 socket takes IPv6 alone."""
    found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    made: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError:
        _close(made)
        raise
    return made


def serve_in_workers(host: str, port: int, workers: int, serve_one: ServeOne) -> int:
    """The gateway as `workers` processes on `host`:`port`, each running `serve_one`; the
    exit code for this process."""
    try:
        socks = listening_sockets(host, port)
    except OSError as e:  # taken, or a name that resolves to nothing
        log.error("gateway_port_unavailable", host=host, port=port, error=str(e))
        return EXIT_STARTUP
    try:
        folder = Path(tempfile.mkdtemp(prefix="jobsuite-gateway-"))
    except OSError as e:  # no writable TMPDIR (a read-only container without a tmpfs)
        _close(socks)
        log.error("gateway_worker_folder_unavailable", tmpdir=tempfile.gettempdir(), error=str(e))
        return EXIT_STARTUP
    try:
        WorkerShare(folder, 0).prepare()
        return _Supervisor(socks, folder, workers, serve_one).run()
    finally:
        _close(socks)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class _Worker:
    index: int
    started: float


class _Supervisor:
    """The first process's loop. Its signal handlers do nothing but wake the loop (the
    signal's number written to a pipe, `signal.set_wakeup_fd`): stopping, logging, replacing
    and killing happen in the loop, never inside a handler that could interrupt a log line
    half written (the log's lock is not reentrant)."""

    def __init__(
        self, socks: list[socket.socket], folder: Path, workers: int, serve_one: ServeOne
    ) -> None:
        self._socks = socks
        self._folder = folder
        self._count = workers
        self._serve_one = serve_one
        self._pid = os.getpid()
        self._workers: dict[int, _Worker] = {}
        self._respawns: dict[int, float] = {}  # worker index -> when to start it again
        self._stopping = False
        self._kill_at = math.inf  # the first stop signal's deadline, until the kill
        self._exit_code = 0
        self._wakeup = (-1, -1)

    def run(self) -> int:
        self._wakeup = os.pipe()
        for fd in self._wakeup:
            os.set_blocking(fd, False)
        previous = {signum: signal.signal(signum, _wake) for signum in _SIGNALS}
        old_wakeup = signal.set_wakeup_fd(self._wakeup[1])
        try:
            for index in range(self._count):
                self._start(index)
            while self._workers or self._respawns:  # a stop clears the respawns
                self._wait()
                self._reap()
                self._respawn_due()
                self._kill_if_late()
            return self._exit_code
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for fd in self._wakeup:
                os.close(fd)

    def _wait(self) -> None:
        """Until a signal comes or the next thing is due; then a stop signal is acted on."""
        due = min([*self._respawns.values(), self._kill_at])
        timeout = None if due == math.inf else max(0.0, due - time.monotonic())
        select.select([self._wakeup[0]], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            for signum in os.read(self._wakeup[0], 512):
                if signum in _STOPS:
                    self._stop(signal.Signals(signum).name)

    def _reap(self) -> None:
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left (each already waited for)
                self._workers.clear()
                return
            if pid == 0:
                return
            self._exited(pid, os.waitstatus_to_exitcode(status))

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
        # One that died that soon waits a moment: no tight loop of a worker failing at once.
        soon = time.monotonic() - worker.started < RESPAWN_PAUSE_S
        self._respawns[worker.index] = time.monotonic() + (RESPAWN_PAUSE_S if soon else 0)

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for index, due in list(self._respawns.items()):
            if due <= now:
                del self._respawns[index]
                self._start(index)

    def _fail(self, code: int) -> None:
        self._exit_code = code
        self._stop("SIGTERM")

    def _start(self, index: int) -> None:
        # Unflushed output is written once, not by both processes (and a log reader that is
        # gone fails no fork). Signals wait until the child has our handlers off.
        _flush_quietly()
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    self._child(index)
                finally:
                    os._exit(1)  # _child exits itself; nothing here may go on as the gateway
            self._workers[pid] = _Worker(index, time.monotonic())
        except OSError as e:  # no process to be had (EAGAIN, ENOMEM)
            log.error("gateway_worker_not_started", worker=index, error=str(e))
            self._fail(1)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        log.info("gateway_worker_started", worker=index, pid=pid)

    def _child(self, index: int) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for fd in self._wakeup:
                os.close(fd)
            for signum in _SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            # A group of its own: a terminal's Ctrl-C reaches the first process alone, which
            # passes a SIGTERM on (two signals would make uvicorn skip its graceful stop).
            os.setpgid(0, 0)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            _stop_with_parent(self._pid)
            code = self._serve_one(self._socks, WorkerShare(self._folder, index))
        except KeyboardInterrupt:  # SIGINT sent to this worker itself: a stop like SIGTERM
            code = 0
        except SystemExit as e:  # uvicorn's for an app that could not start: 3
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            log.exception("gateway_worker_crashed", worker=index)
        finally:
            _flush_quietly()
            os._exit(code)

    def _stop(self, signal_name: str) -> None:
        if self._stopping:
            return  # the kill deadline stands from the first signal
        log.info("gateway_stopping", signal=signal_name)
        self._stopping = True
        self._kill_at = time.monotonic() + STOP_GRACE_S
        self._respawns.clear()
        _close(self._socks)  # its copy of the port; each worker closes its own as it stops
        for pid in self._workers:
            _signal(pid, signal.SIGTERM)

    def _kill_if_late(self) -> None:
        if time.monotonic() < self._kill_at:
            return
        for pid, worker in self._workers.items():
            log.error("gateway_worker_killed_after_grace", worker=worker.index, pid=pid)
            _signal(pid, signal.SIGKILL)
        self._kill_at = math.inf  # once


def _close(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def _wake(signum: int, frame: FrameType | None) -> None:
    """A signal's handler: its number is in the wakeup pipe already, for the loop."""


def _flush_quietly() -> None:
    with contextlib.suppress(Exception):  # a closed stdout, a log reader gone (EPIPE)
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()


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
