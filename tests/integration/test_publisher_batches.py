"""The gateway's publisher against the real broker: requests waiting together are all sent on
one channel before the first confirm comes back (one round trip for the lot, not one each),
yet each request's outcome is its own job's: a nacked or unroutable job fails alone, and a
connection lost mid-burst is retried once on a fresh one, its jobs in doubt should that
fail too."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import pytest

from services.gateway.publish_links import Link, open_publishing_link
from services.gateway.publisher import Outgoing, Publisher
from shared.amqp.loop_link import LoopLink
from shared.config import Settings
from shared.errors import BrokerUnavailable, PublishInDoubt, PublishNacked
from tests.support.broker import TestBroker
from tests.support.tcpproxy import TcpProxy

N = 20


def request(broker: TestBroker, i: int, routing_key: str = "render") -> list[Outgoing]:
    """A job and its `job.submitted` event, as the gateway sends them."""
    job_id = f"job-{i}"
    event = json.dumps({"job_id": job_id, "event": "job.submitted"}).encode()
    return [
        Outgoing(broker.names.jobs_exchange, routing_key, b"{}", job_id, "render"),
        Outgoing(broker.names.events_exchange, "", event, f"ev-{i}", "job.submitted"),
    ]


def outcome(future: Future[None]) -> BaseException | None:
    return future.exception(timeout=30)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What went over the publisher's links, in order: each message sent (its id), and each
    confirm frame that came back ("confirm")."""
    seen: list[str] = []
    publish, on_confirm = LoopLink.publish, LoopLink._on_confirm

    def sending(link: LoopLink, *args: Any, **kw: Any) -> Any:
        seen.append(kw["message_id"])
        return publish(link, *args, **kw)

    def confirming(link: LoopLink, frame: Any) -> None:
        seen.append("confirm")
        on_confirm(link, frame)

    monkeypatch.setattr(LoopLink, "publish", sending)
    monkeypatch.setattr(LoopLink, "_on_confirm", confirming)
    return seen


def sent_before_the_first_confirm(wire: list[str]) -> list[str]:
    return wire[: wire.index("confirm")]


@pytest.fixture
def one_connection(settings: Settings) -> Iterator[Callable[..., Publisher]]:
    """A publisher on one connection, made but not started: requests queued first wait
    together."""
    made: list[Publisher] = []

    def make(**kw: Any) -> Publisher:
        made.append(Publisher(settings, name=f"{settings.namespace}.pub", connections=1, **kw))
        return made[-1]

    yield make
    for publisher in made:
        publisher.close()


def test_requests_waiting_together_are_sent_before_the_first_confirm(
    broker: TestBroker, one_connection: Callable[..., Publisher], wire: list[str]
) -> None:
    events = broker.events()
    publisher = one_connection()
    futures = [publisher.send(request(broker, i)) for i in range(N)]
    publisher.start()
    assert [outcome(f) for f in futures] == [None] * N
    assert broker.depth(broker.names.task_queue("render")) == N
    broker.wait_until(lambda: len(events.poll()) == N, 10, "every job.submitted event")
    # Every job on the wire before any confirm is back, and no event before one is.
    assert sent_before_the_first_confirm(wire) == [f"job-{i}" for i in range(N)]
    assert sorted(m for m in wire if m.startswith("ev-")) == sorted(f"ev-{i}" for i in range(N))


def test_a_nacked_or_unroutable_job_fails_its_own_request_alone(
    broker: TestBroker, one_connection: Callable[..., Publisher], wire: list[str]
) -> None:
    # A queue that holds one message and nacks the next (reject-publish).
    tiny = f"{broker.settings.namespace}.tiny"
    broker.channel.queue_declare(
        tiny, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    broker.channel.queue_bind(tiny, broker.names.jobs_exchange, "tiny")
    events = broker.events()
    publisher = one_connection()
    keys = ["render", "nowhere", "render", "tiny", "tiny", "render"]
    try:
        futures = [publisher.send(request(broker, i, key)) for i, key in enumerate(keys)]
        publisher.start()
        failed = {i: outcome(f) for i, f in enumerate(futures) if outcome(f) is not None}
    finally:
        broker.channel.queue_delete(tiny)
    assert sorted(failed) == [1, 4]
    assert isinstance(failed[1], PublishNacked) and "unroutable" in str(failed[1])
    assert isinstance(failed[4], PublishNacked) and "nacked" in str(failed[4])
    assert "job-1" in str(failed[1]) and "job-4" in str(failed[4])  # each names its own job
    # Sent together all the same.
    assert sent_before_the_first_confirm(wire) == [f"job-{i}" for i in range(len(keys))]
    assert broker.depth(broker.names.task_queue("render")) == 3
    # Events are sent only for the jobs that got in.
    broker.wait_until(lambda: len(events.poll()) == 4, 10, "four job.submitted events")
    assert sorted(e["job_id"] for e in events.poll()) == ["job-0", "job-2", "job-3", "job-5"]


def cut_after(monkeypatch: pytest.MonkeyPatch, proxy: TcpProxy, sent: int, *, back: bool) -> None:
    """Reset the connection once `sent` jobs are sent; with `back`, new ones get through."""
    publish = LoopLink.publish
    calls = [0]

    def publishing(link: LoopLink, *args: Any, **kw: Any) -> Any:
        confirmed = publish(link, *args, **kw)
        calls[0] += 1
        if calls[0] == sent:
            proxy.reset()
            if back:
                proxy.pass_through()
        return confirmed

    monkeypatch.setattr(LoopLink, "publish", publishing)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy() as tcp_proxy:
        yield tcp_proxy


def through(proxy: TcpProxy) -> Callable[[Settings, str], Awaitable[Link]]:
    async def connect(settings: Settings, name: str) -> Link:
        return await open_publishing_link(
            replace(settings, amqp_url=proxy.url(settings.amqp_url)), name
        )

    return connect


def send_and_cut_after_five(
    broker: TestBroker,
    publisher: Publisher,
    proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
    *,
    back: bool,
) -> list[Future[None]]:
    """N jobs queued together, the connection cut after the fifth is sent (`back`: new
    connections get through again), then the publisher started."""
    futures = [publisher.send(request(broker, i)) for i in range(N)]
    cut_after(monkeypatch, proxy, 5, back=back)
    publisher.start()
    return futures


def test_a_connection_lost_mid_batch_is_retried_once_on_a_fresh_one(
    broker: TestBroker,
    one_connection: Callable[..., Publisher],
    proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    futures = send_and_cut_after_five(
        broker, one_connection(connector=through(proxy)), proxy, monkeypatch, back=True
    )
    assert [outcome(f) for f in futures] == [None] * N
    assert proxy.accepted >= 2  # the retry came on a new connection
    # Every job is in; one sent before the cut may be in twice (jobs are idempotent by id).
    jobs = [props.message_id for props, _ in broker.drain(broker.names.task_queue("render"))]
    assert set(jobs) == {f"job-{i}" for i in range(N)}


def test_jobs_sent_before_a_connection_lost_mid_batch_stay_in_doubt_if_the_retry_fails(
    broker: TestBroker,
    one_connection: Callable[..., Publisher],
    proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # back=False: no new connection gets through, so the retry fails
    futures = send_and_cut_after_five(
        broker, one_connection(connector=through(proxy)), proxy, monkeypatch, back=False
    )
    errors = [outcome(f) for f in futures]
    assert all(isinstance(e, BrokerUnavailable) for e in errors), errors
    assert all(isinstance(e, PublishInDoubt) for e in errors[:5]), errors[:5]
