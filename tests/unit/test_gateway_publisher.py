"""The gateway's publisher against scripted connections: confirms, nacks, lost
connections (retried once on a fresh one), publishes in doubt, a broker alarm (refused at
once while held), an unreachable broker (fails fast), shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.gateway import publisher as publisher_module
from services.gateway.publisher import Outgoing, Publisher
from shared.config import Settings
from shared.errors import BrokerError, BrokerUnavailable, PublishInDoubt, PublishNacked


class FakeLink:
    """A publishing connection that answers each publish from the broker's script."""

    def __init__(self, broker: FakeBroker, number: int) -> None:
        self.broker = broker
        self.number = number
        self.is_open = True
        self.failure: BrokerError | None = None
        self.blocked_reason: str | None = None
        self.node = "127.0.0.1:5672"

    def publish(self, exchange: str, routing_key: str, body: bytes, **kw: Any) -> Any:
        if not self.is_open:
            raise BrokerUnavailable("connection closed")
        confirmed = asyncio.get_running_loop().create_future()
        failure = self.broker.next_failure()
        if failure is NO_CONFIRM:
            self.broker.unconfirmed.append(confirmed)
            return confirmed  # sent, and the broker never answers
        if failure is None:
            self.broker.published.append((self.number, kw["message_id"]))
            confirmed.set_result(None)
            return confirmed
        if isinstance(failure, BrokerUnavailable):
            self.is_open = False
            self.blocked_reason = self.broker.alarm
            if not isinstance(failure, PublishInDoubt):
                raise failure  # lost before it was sent
        confirmed.set_exception(failure)  # sent: a nack, or no confirm (in doubt)
        return confirmed

    async def wait_closed(self, seconds: float) -> None:
        if self.is_open:
            await asyncio.sleep(seconds)

    def close(self) -> None:
        self.is_open = False


NO_CONFIRM = Exception("no confirm")  # a broker that takes a message and never confirms it


class FakeBroker:
    def __init__(self) -> None:
        self.unconfirmed: list[asyncio.Future[None]] = []
        self.up = True
        self.connections = 0
        self.published: list[tuple[int, str]] = []
        self.failures: list[Exception | None] = []
        self.made: list[FakeLink] = []
        self.alarm: str | None = None  # what a connection that fails is blocked for
        self.lock = threading.Lock()

    async def connect(self, settings: Settings, name: str) -> FakeLink:
        if not self.up:
            raise BrokerUnavailable("connect: connection refused")
        with self.lock:
            self.connections += 1
            self.made.append(FakeLink(self, self.connections))
            return self.made[-1]

    def next_failure(self) -> Exception | None:
        with self.lock:
            return self.failures.pop(0) if self.failures else None


def message(i: int | str) -> Outgoing:
    return Outgoing("jobs", "render", b"{}", f"m{i}", "render")


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def publisher(broker: FakeBroker) -> Iterator[Publisher]:
    p = Publisher(Settings(), name="test", connections=2, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    yield p
    p.close()


def wait_until(check: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_batch_is_published_in_order_and_confirmed(
    publisher: Publisher, broker: FakeBroker
) -> None:
    publisher.publish([message("job"), message("event")])
    assert [m for _, m in broker.published] == ["mjob", "mevent"]
    assert publisher.connected


def test_many_threads_publish_at_once(publisher: Publisher, broker: FakeBroker) -> None:
    threads = [threading.Thread(target=publisher.publish, args=([message(i)],)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(m for _, m in broker.published) == sorted(f"m{i}" for i in range(50))


def test_a_nack_fails_the_request_and_nothing_after_it_is_sent(
    publisher: Publisher, broker: FakeBroker
) -> None:
    broker.failures.append(PublishNacked("nacked"))
    with pytest.raises(PublishNacked):
        publisher.publish([message("job"), message("event")])
    assert broker.published == []
    publisher.publish([message("next")])  # the connection is still good
    assert [m for _, m in broker.published] == ["mnext"]


def test_a_lost_connection_is_retried_once_on_a_fresh_one(
    publisher: Publisher, broker: FakeBroker
) -> None:
    wait_until(lambda: broker.connections == 2)
    broker.failures.append(BrokerUnavailable("connection reset"))
    publisher.publish([message("job")])
    assert [m for _, m in broker.published] == ["mjob"]
    assert broker.connections == 3


def test_a_second_loss_in_a_row_fails_the_request(publisher: Publisher, broker: FakeBroker) -> None:
    broker.failures += [BrokerUnavailable("reset"), BrokerUnavailable("reset again")]
    with pytest.raises(BrokerUnavailable, match="reset again"):
        publisher.publish([message("job")])


def test_a_publish_in_doubt_is_retried_under_the_same_id_and_stays_in_doubt_if_that_fails(
    publisher: Publisher, broker: FakeBroker
) -> None:
    broker.failures.append(PublishInDoubt("sent, but not confirmed"))
    publisher.publish([message("job")])  # the same message again, confirmed this time
    assert [m for _, m in broker.published] == ["mjob"]
    broker.failures += [PublishInDoubt("sent, but not confirmed"), BrokerUnavailable("reset")]
    with pytest.raises(PublishInDoubt):  # the first try may have landed: not a clean no
        publisher.publish([message("job2")])


def test_a_blocked_publish_is_in_doubt_and_jobs_are_refused_at_once_while_the_alarm_holds(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "ALARM_HOLD_S", 0.5)
    p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    try:
        wait_until(lambda: broker.connections == 1)
        broker.alarm = "low on memory"
        broker.failures.append(PublishInDoubt("the broker blocks publishing: low on memory"))
        with pytest.raises(PublishInDoubt, match="low on memory"):
            p.publish([message("job")])
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=r"low on memory.*nothing was sent") as refused:
            p.publish([message("during")])
        assert not isinstance(refused.value, PublishInDoubt)
        assert time.monotonic() - started < 0.4
        assert broker.published == []
        time.sleep(0.5)  # the hold is over: the next job tries again
        p.publish([message("after")])
        assert [m for _, m in broker.published] == ["mafter"]
    finally:
        p.close()


def test_a_failing_event_after_the_job_does_not_fail_the_request(
    publisher: Publisher, broker: FakeBroker
) -> None:
    publisher.publish([message("warm-up")])
    broker.published.clear()
    broker.failures += [None, PublishNacked("event nacked")]
    publisher.publish([message("job"), message("event")])
    assert [m for _, m in broker.published] == ["mjob"]


def test_an_unreachable_broker_fails_fast_and_reconnects_when_back(broker: FakeBroker) -> None:
    broker.up = False
    p = Publisher(Settings(), name="test", connections=2, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="connection refused"):
            p.publish([message("job")])
        assert time.monotonic() - started < 1
        assert not p.connected
        broker.up = True
        wait_until(lambda: p.connected, timeout=10)
        p.publish([message("job")])
    finally:
        p.close()


def test_a_connection_closed_while_idle_is_noticed_and_replaced(
    publisher: Publisher, broker: FakeBroker
) -> None:
    wait_until(lambda: broker.connections == 2)
    for connection in broker.made:  # the broker closes them (`rabbitmqctl close_connection`)
        connection.is_open = False
    wait_until(lambda: broker.connections == 4)  # both noticed while idle
    publisher.publish([message("b")])
    assert broker.published[-1][0] in (3, 4)


def test_after_close_requests_are_refused(broker: FakeBroker) -> None:
    p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    p.close()
    with pytest.raises(BrokerUnavailable, match="shutting down"):
        p.publish([message("late")])


class Said:
    """Stands in for the publisher's logger: what it said, at which level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((level, event, kw))


def test_a_broker_down_is_said_once_a_step_not_once_a_connection(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = Said()
    monkeypatch.setattr(publisher_module, "log", said)
    broker.up = False
    p = Publisher(Settings(), name="test", connections=4, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    time.sleep(1.0)
    p.close()
    tries = [(level, kw) for level, event, kw in said.lines if event == "publisher_cannot_connect"]
    assert {kw["connection"] for _, kw in tries} == {0, 1, 2, 3}  # every one kept trying
    warned = [kw for level, kw in tries if level == "warning"]
    by_thread_0 = [kw for kw in warned if kw["connection"] == 0]
    # Connection 0 says each of its back-off steps; another one only the first news.
    assert len(by_thread_0) >= 2
    assert len(warned) <= len(by_thread_0) + 1, said.lines
    assert all(kw["error"] == "connect: connection refused" for kw in warned)


def test_publish_async_awaits_the_confirm_and_raises_what_publish_would(
    publisher: Publisher, broker: FakeBroker
) -> None:
    asyncio.run(publisher.publish_async([message("job"), message("event")]))
    # The request is settled by its job's confirm; its event follows on the publisher's loop.
    assert [m for _, m in broker.published][:1] == ["mjob"]
    wait_until(lambda: [m for _, m in broker.published] == ["mjob", "mevent"])
    broker.failures.append(PublishNacked("nacked"))
    with pytest.raises(PublishNacked):
        asyncio.run(publisher.publish_async([message("refused")]))


def test_publish_async_not_picked_up_in_time_is_unavailable(broker: FakeBroker) -> None:
    p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
    # Not started: nothing takes the request, so it is withdrawn and never published.
    with pytest.raises(BrokerUnavailable, match="no publisher free"):
        asyncio.run(p.publish_async([message("late")], timeout=0.05))
    p.start()
    p.close()
    assert broker.published == []


def test_on_its_own_loop_a_request_is_served_there_and_a_blocking_publish_is_refused(
    broker: FakeBroker,
) -> None:
    async def serving() -> None:
        p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
        p.start()  # on this loop, as the gateway's lifespan does
        try:
            await p.publish_async([message("job"), message("event")])
            assert [m for _, m in broker.published] == ["mjob", "mevent"]
            with pytest.raises(RuntimeError, match="own event loop"):
                p.publish([message("would-wait-for-itself")])
        finally:
            await p.aclose()
        with pytest.raises(BrokerUnavailable, match="shutting down"):
            await p.publish_async([message("late")])
        p.close()  # again: nothing left to do

    asyncio.run(serving())
    assert [m for _, m in broker.published] == ["mjob", "mevent"]


def test_closing_a_publisher_on_a_thread_of_its_own_twice_is_harmless(broker: FakeBroker) -> None:
    p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    p.publish([message("job")])
    p.close()
    p.close()
    with pytest.raises(BrokerUnavailable, match="shutting down"):
        p.publish([message("late")])


def test_a_job_not_confirmed_in_time_is_in_doubt_and_its_connection_replaced(
    broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that keeps the connection alive and confirms nothing (a quorum queue without
    its majority): the request ends in doubt after CONFIRM_TIMEOUT_S instead of waiting for
    good, the connection is dropped (its later confirms would wait as long), and the next
    job goes out on a fresh one."""
    monkeypatch.setattr(publisher_module, "CONFIRM_TIMEOUT_S", 0.2)
    p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    try:
        broker.failures = [NO_CONFIRM]
        started = time.monotonic()
        with pytest.raises(PublishInDoubt, match=r"confirmed nothing within 0\.2 s"):
            p.publish([message("stuck")])
        assert time.monotonic() - started < 5
        assert not broker.made[0].is_open, "the connection that confirms nothing is dropped"
        p.publish([message("next")])
        assert broker.published == [(2, "mnext")]
    finally:
        p.close()


def test_a_request_ended_by_the_shutdown_after_its_job_went_out_is_in_doubt(
    broker: FakeBroker,
) -> None:
    """A thread's request whose task the loop's end cancels: its job was sent, so the
    answer is in doubt (the inputs and the key are kept), not a clean "shutting down"."""
    p = Publisher(Settings(), name="test", connections=1, connector=broker.connect)  # type: ignore[arg-type]
    p.start()
    p.publish([message("warm")])
    broker.failures = [NO_CONFIRM]
    future = p.send([message("stuck")])
    wait_until(lambda: broker.unconfirmed)
    assert p._loop is not None
    for task in list(p._tasks):
        p._loop.call_soon_threadsafe(task.cancel)  # as the loop's end cancels what is left
    with pytest.raises(PublishInDoubt, match="shutting down; the job was sent"):
        future.result(timeout=5)
    p.close()


@pytest.fixture
def quick_resends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "EVENT_RESENDS_S", (0.01, 0.02, 0.03))


def test_a_refused_event_is_sent_again_after_the_request_is_answered(
    publisher: Publisher, broker: FakeBroker, quick_resends: None
) -> None:
    """The job is confirmed and the request answered; its job.submitted is refused (the
    event queue electing a new leader after a node died), and goes again, with its id."""
    broker.failures = [None, PublishNacked("job.submitted mevent: nacked"), None]
    publisher.publish([message("job"), message("event")])
    wait_until(lambda: [m for _, m in broker.published] == ["mjob", "mevent"])


def test_an_event_lost_with_its_connection_goes_again_on_a_fresh_one(
    publisher: Publisher, broker: FakeBroker, quick_resends: None
) -> None:
    broker.failures = [None, PublishInDoubt("connection lost with it unconfirmed")]
    publisher.publish([message("job"), message("event")])
    wait_until(lambda: (2, "mevent") in broker.published or (1, "mevent") in broker.published)
    assert broker.made[0].is_open is False  # the event went on another connection


def test_an_event_refused_past_the_last_resend_is_logged_not_published(
    publisher: Publisher, broker: FakeBroker, quick_resends: None
) -> None:
    refused = PublishNacked("job.submitted mevent: nacked")
    broker.failures = [None, refused, refused, refused, refused]
    with capture_logs() as logs:
        publisher.publish([message("job"), message("event")])
        wait_until(lambda: any(e["event"] == "event_not_published" for e in logs))
    (given_up,) = [e for e in logs if e["event"] == "event_not_published"]
    assert (given_up["message_id"], given_up["resends"]) == ("mevent", 3)
    assert [e["event"] for e in logs].count("event_sent_again") == 3
    assert [m for _, m in broker.published] == ["mjob"]


def test_events_waiting_to_go_again_are_logged_not_published_at_the_shutdown(
    publisher: Publisher, broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "EVENT_RESENDS_S", (60.0,))
    broker.failures = [None, PublishNacked("job.submitted mevent: nacked")]
    with capture_logs() as logs:
        publisher.publish([message("job"), message("event")])
        time.sleep(0.05)
        assert not [e for e in logs if e["event"] == "event_not_published"], "it waits to go"
        started = time.monotonic()
        publisher.close()
    assert time.monotonic() - started < 5, "the shutdown did not wait for the resend"
    (given_up,) = [e for e in logs if e["event"] == "event_not_published"]
    assert (given_up["message_id"], given_up["resends"]) == ("mevent", 0)


def test_a_resend_waits_out_an_alarm_hold_without_spending_a_try(
    publisher: Publisher, broker: FakeBroker, quick_resends: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker alarm holds publishing from the moment the event is refused: the resends due
    meanwhile are not sent (each would only be blocked and renew the hold), and none is
    spent; the event goes once the hold is over."""
    held = threading.Event()
    real_alarm, real_resend_later = publisher._alarm, publisher._resend_later

    def refused_then_held(*args: Any) -> None:
        held.set()
        real_resend_later(*args)

    monkeypatch.setattr(
        publisher, "_alarm", lambda: "memory alarm" if held.is_set() else real_alarm()
    )
    monkeypatch.setattr(publisher, "_resend_later", refused_then_held)
    broker.failures = [None, PublishNacked("job.submitted mevent: nacked")]
    with capture_logs() as logs:
        publisher.publish([message("job"), message("event")])
        time.sleep(0.3)  # many times the resends' delays
        assert [m for _, m in broker.published] == ["mjob"], "sent into the alarm"
        held.clear()
        wait_until(lambda: [m for _, m in broker.published] == ["mjob", "mevent"])
    assert not [e for e in logs if e["event"] == "event_not_published"]
