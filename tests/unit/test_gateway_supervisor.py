"""GATEWAY_WORKERS' first process (services/gateway/workers.py) with stand-in workers, run in
a forked process of its own (it sets signal handlers): a worker that fails before it serves
stops the gateway with its code, whatever the failure; one that fails after is replaced."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from services.gateway.worker_share import WorkerShare
from services.gateway.workers import ServeOne, serve_in_workers
from shared.exit_codes import EXIT_CONFIG


def gateway_exit_code(workers: int, serve_one: ServeOne) -> int:
    """The exit code of serve_in_workers on a free loopback port, run in a child process."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = serve_in_workers("127.0.0.1", 0, workers, serve_one)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def starts(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_worker_failing_before_it_serves_stops_the_gateway_however_it_failed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "starts"

    def broken(sock: socket.socket, share: WorkerShare) -> int:
        with log.open("a") as f:
            f.write(f"{share.index}\n")
        raise RuntimeError("the blob store is gone")

    assert gateway_exit_code(2, broken) == 1
    assert sorted(starts(log)) == ["0", "1"]  # each started once, none replaced


def test_a_worker_failing_after_it_served_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "starts"

    def once_then_misconfigured(sock: socket.socket, share: WorkerShare) -> int:
        with log.open("a") as f:
            f.write(f"{share.index}\n")
        if len(starts(log)) == 1:
            share.mark_serving()
            return 1  # crashed while serving: replaced
        return EXIT_CONFIG  # the replacement cannot start: the gateway stops with its code

    assert gateway_exit_code(1, once_then_misconfigured) == EXIT_CONFIG
    assert starts(log) == ["0", "0"]
