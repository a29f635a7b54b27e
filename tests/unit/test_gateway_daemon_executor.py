"""The one-daemon-thread executor behind the gateway's off-loop ledger writes."""

from __future__ import annotations

import gc
import threading

import pytest

from services.gateway.daemon_executor import DaemonThreadExecutor


def test_calls_run_in_order_on_one_daemon_thread_and_carry_their_outcome() -> None:
    executor = DaemonThreadExecutor("test-writer")
    seen: list[tuple[int, str, bool]] = []

    def note(n: int) -> int:
        thread = threading.current_thread()
        seen.append((n, thread.name, thread.daemon))
        return n * 2

    futures = [executor.submit(note, n) for n in range(5)]
    assert [f.result(5) for f in futures] == [0, 2, 4, 6, 8]
    assert seen == [(n, "test-writer", True) for n in range(5)]

    def fails() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        executor.submit(fails).result(5)
    assert executor.submit(note, 9).result(5) == 18, "the thread goes on after a failure"
    executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(note, 1)


def test_shutdown_can_cancel_what_has_not_started() -> None:
    executor = DaemonThreadExecutor("test-writer")
    started, gate = threading.Event(), threading.Event()

    def held() -> bool:
        started.set()
        return gate.wait(5)

    running = executor.submit(held)
    assert started.wait(5)
    queued = executor.submit(lambda: "never")
    executor.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    gate.set()
    assert running.result(5) is True


def test_an_executor_dropped_without_a_shutdown_ends_its_thread() -> None:
    """As a test's gateway app is dropped: its writer thread does not linger."""
    executor = DaemonThreadExecutor("test-dropped")
    assert executor.submit(threading.current_thread).result(5).name == "test-dropped"
    thread = next(t for t in threading.enumerate() if t.name == "test-dropped")
    del executor
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
