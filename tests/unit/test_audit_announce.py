"""The audit's `job.dead` on the events exchange: after the batch is recorded, before its ack,
and never at the cost of the recording (a stub channel stands in for the broker)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from services.audit.announce import DeadAnnouncer
from services.audit.consumer import AuditConsumer
from services.audit.recorder import Recorder
from shared.amqp import Delivery
from shared.config import Settings
from shared.messages import Job, decode_event, encode
from tests.support.audit import make_event
from tests.support.stub_channel import StubChannel

EXCHANGE = "ns.events"


class StubConnection:
    """Opens the one stub channel, as `Connection.channel(confirm=True)` would."""

    def __init__(self, channel: StubChannel) -> None:
        self.stub = channel

    def channel(self, *, confirm: bool = False) -> StubChannel:
        assert confirm
        return self.stub


@pytest.fixture
def consumer(tmp_path: Path) -> Any:
    settings = Settings(audit_dir=tmp_path / "audit", namespace="ns")
    recorder = Recorder.open(settings)
    yield AuditConsumer(settings, recorder, instance="test:1", stopping=threading.Event())
    recorder.close()


def dead_letter(channel: StubChannel, tag: int, job: Job) -> Delivery:
    headers = {"x-death": [{"reason": "rejected", "queue": "ns.jobs.resize", "count": 1}]}
    return Delivery(channel, tag, encode(job), job.id, headers, False)


def event(channel: StubChannel, tag: int, name: str, job: Job) -> Delivery:
    body = encode(make_event(name, job.id))  # type: ignore[arg-type]
    return Delivery(channel, tag, body, None, {}, False, user_id="resizer")


def test_job_dead_is_announced_after_recording_and_before_the_batch_is_acked(
    consumer: Any,
) -> None:
    channel, job = StubChannel(), Job(type="resize")
    pending = [
        ("events", event(channel, 1, "job.failed", job)),
        ("dead", dead_letter(channel, 2, job)),
    ]
    consumer._record_batch(pending, DeadAnnouncer(StubConnection(channel), EXCHANGE))

    assert channel.calls == [("publish", "job.dead"), ("confirm",), ("ack", 2)]
    (published,) = channel.published
    announced = decode_event(published.body)
    assert (published.exchange, announced.job_id, announced.service) == (EXCHANGE, job.id, "audit")
    recorded = consumer.recorder.model.known_event_ids([announced.event_id])
    assert recorded == {announced.event_id} and pending == []


def test_its_own_copy_coming_back_is_not_recorded_twice(consumer: Any) -> None:
    channel, job = StubChannel(), Job(type="resize")
    announcer = DeadAnnouncer(StubConnection(channel), EXCHANGE)
    consumer._record_batch([("dead", dead_letter(channel, 1, job))], announcer)
    copy = Delivery(channel, 2, channel.published[0].body, None, {}, False, user_id="audit")
    consumer._record_batch([("events", copy)], announcer)

    assert consumer.recorder.audit_log.head_seq == 1
    assert channel.settled() == [("ack", 1), ("ack", 2)]


def test_a_redelivered_dead_letter_is_announced_again_under_the_same_id(consumer: Any) -> None:
    # The audit recorded it, then died before announcing: the redelivery must announce it.
    channel, job = StubChannel(), Job(type="resize")
    announcer = DeadAnnouncer(StubConnection(channel), EXCHANGE)
    consumer._record_batch([("dead", dead_letter(channel, 1, job))], announcer)
    consumer._record_batch([("dead", dead_letter(channel, 2, job))], announcer)

    first, again = (decode_event(p.body) for p in channel.published)
    assert first.event_id == again.event_id
    assert consumer.recorder.audit_log.head_seq == 1


def test_deliveries_arriving_while_it_announces_wait_for_the_next_batch(consumer: Any) -> None:
    channel, job = StubChannel(), Job(type="resize")
    pending = [("dead", dead_letter(channel, 1, job))]
    late = ("events", event(channel, 2, "job.started", Job(type="resize")))

    class Pumping(DeadAnnouncer):
        def announce(self, events: Any) -> None:
            pending.append(late)  # what the broker delivers while the confirm is awaited
            super().announce(events)

    consumer._record_batch(pending, Pumping(StubConnection(channel), EXCHANGE))

    assert channel.settled() == [("ack", 1)] and pending == [late]
    assert consumer.recorder.audit_log.head_seq == 1


def test_a_refused_announcement_is_logged_and_the_batch_still_acked(
    consumer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    channel, job = StubChannel(refuse={"job.dead"}), Job(type="resize")
    consumer._record_batch(
        [("dead", dead_letter(channel, 1, job))], DeadAnnouncer(StubConnection(channel), EXCHANGE)
    )

    assert channel.settled() == [("ack", 1)]
    assert consumer.recorder.audit_log.head_seq == 1
    assert "job_dead_not_announced" in capsys.readouterr().out
