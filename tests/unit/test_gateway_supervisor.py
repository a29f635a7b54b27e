"""GATEWAY_WORKERS' first process (services/gateway/workers.py) with stand-in workers, run in
a forked process of its own (it sets signal handlers): a worker that fails before it serves
stops the gateway with its code, whatever the failure; one that fails after is replaced, even
with nowhere left to write its log."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.gateway import workers
from services.gateway.worker_share import WorkerShare
from services.gateway.workers import ServeOne, listening_sockets, serve_in_workers
from shared.exit_codes import EXIT_CONFIG
from shared.log import configure_logging


def gateway_exit_code(
    count: int, serve_one: ServeOne, before: Callable[[], None] = lambda: None
) -> int:
    """The exit code of serve_in_workers on a free loopback port, run in a child process
    (after `before`)."""
    return exit_code(start_gateway(count, serve_one, before))


def start_gateway(count: int, serve_one: ServeOne, before: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            before()
            code = serve_in_workers("127.0.0.1", 0, count, serve_one)
        finally:
            os._exit(code)
    return pid


def exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def starts(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_worker_failing_before_it_serves_stops_the_gateway_however_it_failed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "starts"

    def broken(socks: list[socket.socket], share: WorkerShare) -> int:
        with log.open("a") as f:
            f.write(f"{share.index}\n")
        deadline = time.monotonic() + 10  # both started before either fails (none stopped)
        while len(starts(log)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("the blob store is gone")

    assert gateway_exit_code(2, broken) == 1
    assert sorted(starts(log)) == ["0", "1"]  # each started once, none replaced


def test_a_worker_failing_after_it_served_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "starts"

    def once_then_misconfigured(socks: list[socket.socket], share: WorkerShare) -> int:
        with log.open("a") as f:
            f.write(f"{share.index}\n")
        if len(starts(log)) == 1:
            share.mark_serving()
            return 1  # crashed while serving: replaced
        return EXIT_CONFIG  # the replacement cannot start: the gateway stops with its code

    assert gateway_exit_code(1, once_then_misconfigured) == EXIT_CONFIG
    assert starts(log) == ["0", "0"]


def test_a_worker_that_uvicorn_stops_at_start_up_gives_its_exit_code() -> None:
    def app_failed(socks: list[socket.socket], share: WorkerShare) -> int:
        raise SystemExit(3)  # uvicorn's exit when the app's start-up fails

    assert gateway_exit_code(1, app_failed) == 3


def test_a_log_reader_that_went_away_stops_no_replacement(tmp_path: Path) -> None:
    """stdout a pipe whose reader is gone (journald restarted, say): the supervisor's lines are
    lost (a failed flush leaves them in the buffer, and every flush after fails too), but a
    worker is still replaced and the gateway still exits with the right code."""
    log = tmp_path / "starts"

    def nowhere_to_log() -> None:
        reader, writer = os.pipe()
        os.close(reader)
        sys.stdout = os.fdopen(writer, "w")
        configure_logging("gateway")

    def once_then_misconfigured(socks: list[socket.socket], share: WorkerShare) -> int:
        with log.open("a") as f:
            f.write(f"{share.index}\n")
        if len(starts(log)) == 1:
            share.mark_serving()
            return 1
        return EXIT_CONFIG

    assert gateway_exit_code(1, once_then_misconfigured, nowhere_to_log) == EXIT_CONFIG
    assert starts(log) == ["0", "0"]


def test_a_worker_deaf_to_sigterm_is_killed_once_the_grace_is_over(tmp_path: Path) -> None:
    log = tmp_path / "starts"

    def deaf(socks: list[socket.socket], share: WorkerShare) -> int:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        share.mark_serving()
        with log.open("a") as f:
            f.write(f"{share.index}\n")
        time.sleep(60)
        return 0

    def short_grace() -> None:
        workers.STOP_GRACE_S = 1

    gateway = start_gateway(2, deaf, short_grace)
    deadline = time.monotonic() + 10
    while len(starts(log)) < 2:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.01)
    stopped = time.monotonic()
    os.kill(gateway, signal.SIGTERM)
    assert exit_code(gateway) == 0
    assert 1 <= time.monotonic() - stopped < 10  # killed at the grace's end, not before


def test_the_port_is_bound_as_one_uvicorn_process_binds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As asyncio's create_server under one uvicorn process: every address the host names
    (`""`: each family's every interface; loopback stands in for them here), each IPv6 socket
    taking IPv6 alone."""
    real = socket.getaddrinfo
    asked: list[str | None] = []

    def loopback_for_every_interface(host: str | None, *args: Any, **kw: Any) -> Any:
        asked.append(host)
        found = [*real("127.0.0.1", *args, **kw), *real("::1", *args, **kw)]
        return found + found[:1]  # a repeat, as resolvers give

    monkeypatch.setattr(socket, "getaddrinfo", loopback_for_every_interface)
    made = listening_sockets("", 0)
    try:
        assert asked == [None]
        assert sorted(s.family for s in made) == [socket.AF_INET, socket.AF_INET6]
        (v6,) = [s for s in made if s.family == socket.AF_INET6]
        assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert all(s.get_inheritable() for s in made)
    finally:
        for sock in made:
            sock.close()
