"""Settling against a stub channel: every message confirmed before the ack or the reject."""

from __future__ import annotations

import time

import pytest

from shared.config import Settings
from shared.errors import BrokerUnavailable, PublishNacked
from shared.events import EventSource
from shared.messages import FollowUp, Job
from shared.topology import RETRY_DELAY_HEADER, Names
from shared.worker.settle import Settler
from tests.support.stub_channel import StubChannel

NAMES = Names("ns")


@pytest.fixture
def channel() -> StubChannel:
    return StubChannel()


def settler(channel: StubChannel, delays: tuple[int, ...] = (100, 200)) -> Settler:
    settings = Settings(namespace="ns", retry_delays_ms=delays)
    return Settler(channel, NAMES, EventSource("tester", "host:1"), settings)


def delivered(channel: StubChannel, job: Job) -> tuple[Job, object]:
    channel.consume("q", lambda d: None)
    return job, channel.deliver(job)


def test_success_confirms_job_succeeded_before_the_ack(channel: StubChannel) -> None:
    job, delivery = delivered(channel, Job(type="resize"))
    outcome = settler(channel).succeed(job, delivery, ["outputs/x/a.png"], time.monotonic())
    assert outcome == "succeeded"
    assert channel.calls[1:] == [("publish", "job.succeeded"), ("confirm",), ("ack", 1)]
    assert channel.published[0].exchange == NAMES.events_exchange


def test_a_follow_up_and_its_submitted_event_are_confirmed_before_job_succeeded(
    channel: StubChannel,
) -> None:
    job, delivery = delivered(channel, Job(type="resize", then=FollowUp(type="mail")))
    settler(channel).succeed(job, delivery, ["outputs/x/a.png"], time.monotonic())
    assert channel.calls[1:] == [
        ("publish", "mail"),
        ("publish", "job.submitted"),
        ("confirm",),
        ("publish", "job.succeeded"),
        ("confirm",),
        ("ack", 1),
    ]
    follow_up = channel.published[0]
    assert (follow_up.exchange, follow_up.routing_key) == (NAMES.jobs_exchange, "mail")
    assert follow_up.job.inputs == ["outputs/x/a.png"] and follow_up.job.parent_id == job.id


def test_a_refused_follow_up_is_neither_followed_by_job_succeeded_nor_acked(
    channel: StubChannel,
) -> None:
    channel.refuse.add("mail")
    job, delivery = delivered(channel, Job(type="resize", then=FollowUp(type="mail")))
    with pytest.raises(PublishNacked, match="mail"):
        settler(channel).succeed(job, delivery, [], time.monotonic())
    assert "job.succeeded" not in channel.events()
    assert channel.settled() == []


def started(channel: StubChannel, job: Job) -> Settler:
    """A settler that has sent the job's `job.started`, unconfirmed, as the consumer does."""
    made = settler(channel)
    made.publish_event(made.source.about("job.started", job))
    return made


def test_a_refused_job_started_is_sent_again_and_the_job_still_succeeds(
    channel: StubChannel,
) -> None:
    """The event queue refuses `job.started` (a leader election): it is sent once more and
    the job succeeds, rather than being retried as if its outcome had been refused."""
    channel.refuse_once.add("job.started")
    job, delivery = delivered(channel, Job(type="resize"))
    outcome = started(channel, job).succeed(job, delivery, [], time.monotonic())
    assert outcome == "succeeded"
    assert channel.calls[1:] == [
        ("publish", "job.started"),
        ("publish", "job.succeeded"),
        ("confirm",),
        ("publish", "job.started"),  # the same event, its id kept
        ("confirm",),
        ("ack", 1),
    ]
    first, _, again = (p.body for p in channel.published)
    assert first == again


def test_a_refused_event_beside_a_follow_up_sends_the_follow_up_once(
    channel: StubChannel,
) -> None:
    channel.refuse_once.add("job.submitted")
    job, delivery = delivered(channel, Job(type="resize", then=FollowUp(type="mail")))
    assert started(channel, job).succeed(job, delivery, [], time.monotonic()) == "succeeded"
    assert [p.message_type for p in channel.published].count("mail") == 1
    assert channel.events().count("job.submitted") == 2  # the refused one, then again
    assert channel.settled() == [("ack", 1)]


def test_events_refused_twice_drop_the_connection_unsettled(channel: StubChannel) -> None:
    channel.refuse.add("job.succeeded")
    job, delivery = delivered(channel, Job(type="resize"))
    with pytest.raises(BrokerUnavailable, match="refused the job's events twice"):
        started(channel, job).succeed(job, delivery, [], time.monotonic())
    assert channel.settled() == []


def test_failure_confirms_job_failed_then_rejects(channel: StubChannel) -> None:
    job, delivery = delivered(channel, Job(type="resize"))
    outcome = settler(channel).fail(job, delivery, "invalid_params", "width: bad", time.monotonic())
    assert outcome == "failed"
    assert channel.calls[1:] == [("publish", "job.failed"), ("confirm",), ("reject", 1)]


def test_a_retry_goes_to_the_next_back_off_queue_with_the_next_attempt(
    channel: StubChannel,
) -> None:
    job, delivery = delivered(channel, Job(type="resize"))
    outcome = settler(channel).retry(job, delivery, "transient", "smtp down", time.monotonic())
    assert outcome == "retrying"
    assert channel.calls[1:] == [
        ("publish", "job.retrying"),
        ("confirm",),
        ("publish", "resize"),
        ("confirm",),
        ("ack", 1),
    ]
    again = channel.published[1]
    assert again.exchange == NAMES.retry_exchange and again.routing_key == "resize"
    assert again.headers == {RETRY_DELAY_HEADER: "100"}
    assert (again.job.id, again.job.attempt) == (job.id, 2)


def test_no_back_off_step_left_means_dead_letters(channel: StubChannel) -> None:
    job, delivery = delivered(channel, Job(type="resize", attempt=3))
    outcome = settler(channel).retry(job, delivery, "transient", "smtp down", time.monotonic())
    assert outcome == "failed"
    assert channel.calls[1:] == [("publish", "job.failed"), ("confirm",), ("reject", 1)]


def test_a_refused_job_is_reported_failed_before_it_is_rejected(channel: StubChannel) -> None:
    job, delivery = delivered(channel, Job(type="resize"))
    settler(channel).refuse(job, delivery, "delivery_limit", "delivered 6 times")
    assert channel.calls[1:] == [("publish", "job.failed"), ("confirm",), ("reject", 1)]
