"""The silence watch that drops a connection the broker has stopped talking on."""

from __future__ import annotations

from collections.abc import Callable

import pika.exceptions as pe
import pytest

from shared.amqp import silence as amqp_silence


class FakeImpl:
    """The bits of pika's SelectConnection the watch reads, with a hand-driven timer."""

    def __init__(self, heartbeat_s: int) -> None:
        self.params = type("Params", (), {"heartbeat": heartbeat_s})()
        self.bytes_received = 0
        self.is_open = True
        self.timers: list[Callable[[], None]] = []
        self.terminated: list[Exception] = []
        self.ioloop = self

    def call_later(self, _delay: float, callback: Callable[[], None]) -> None:
        self.timers.append(callback)

    def _terminate_stream(self, error: Exception) -> None:
        self.terminated.append(error)
        self.is_open = False

    def tick(self) -> None:
        self.timers.pop(0)()


class FakeBlocking:
    def __init__(self, impl: FakeImpl) -> None:
        self._impl = impl


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(amqp_silence.time, "monotonic", lambda: now[0])
    return now


def watched(heartbeat_s: int) -> FakeImpl:
    impl = FakeImpl(heartbeat_s)
    amqp_silence.SilenceWatch.start(FakeBlocking(impl))  # type: ignore[arg-type]
    return impl


def test_three_silent_heartbeat_intervals_end_the_stream(clock: list[float]) -> None:
    impl = watched(heartbeat_s=2)
    clock[0] += 6.0
    impl.tick()
    assert not impl.terminated  # exactly three intervals: not yet
    clock[0] += 0.5
    impl.tick()

    (error,) = impl.terminated
    assert isinstance(error, pe.AMQPHeartbeatTimeout)
    assert "nothing from the broker for 6.5s (heartbeat 2s)" in str(error)
    assert not impl.timers  # it does not re-arm on a dead connection


def test_any_bytes_from_the_broker_restart_the_count(clock: list[float]) -> None:
    impl = watched(heartbeat_s=2)
    for _ in range(10):  # 20 s of a healthy connection: a byte every two seconds
        clock[0] += 2.0
        impl.bytes_received += 8
        impl.tick()
    clock[0] += 5.0
    impl.tick()
    assert not impl.terminated
    assert len(impl.timers) == 1


def test_no_watch_without_heartbeats(clock: list[float]) -> None:
    impl = watched(heartbeat_s=0)
    assert not impl.timers


def test_a_closed_connection_is_left_alone(clock: list[float]) -> None:
    impl = watched(heartbeat_s=2)
    impl.is_open = False
    clock[0] += 60
    impl.tick()
    assert not impl.terminated and not impl.timers
