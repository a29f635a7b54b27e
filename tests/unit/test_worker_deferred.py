"""A deferred job (JobDeferred: another worker is doing its one-time part, as a mailer still
sending its mail) comes back after a back-off step that grows with each deferral, with the
same attempt, so waiting for another worker never spends the job's retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.errors import JobDeferred
from shared.events import EventSource
from shared.messages import Job, decode_event
from shared.topology import DEFERRALS_HEADER, DISK_FULL_RETRIES_HEADER, RETRY_DELAY_HEADER, Names
from shared.worker.settle import Settler
from tests.support.stub_channel import StubChannel
from tests.unit.test_worker_consumer import Rig

NAMES = Names("ns")


def settler(channel: StubChannel) -> Settler:
    settings = Settings(namespace="ns", retry_delays_ms=(100, 200, 900))
    return Settler(channel, NAMES, EventSource("tester", "host:1"), settings)


def defer_once(headers: dict[str, Any], attempt: int = 1) -> tuple[Job, Any, StubChannel]:
    channel = StubChannel()
    channel.consume("q", lambda d: None)
    job = Job(type="mail", attempt=attempt)
    delivery = channel.deliver(job, headers=headers)
    outcome = settler(channel).defer(
        job, delivery, "mail_in_flight", "another mailer sends it", time.monotonic()
    )
    assert outcome == "retrying"
    assert channel.calls[1:] == [
        ("publish", "job.retrying"),
        ("confirm",),
        ("publish", "mail"),
        ("confirm",),
        ("ack", 1),
    ]
    return job, channel.published[1], channel


@pytest.mark.parametrize(("deferred", "delay"), [(None, "100"), (1, "200"), (2, "900"), (7, "900")])
def test_each_deferral_waits_a_longer_step_up_to_the_longest(
    deferred: int | None, delay: str
) -> None:
    headers = {} if deferred is None else {DEFERRALS_HEADER: deferred}
    job, again, _ = defer_once(headers, attempt=3)  # the last attempt the budget allows
    assert again.exchange == NAMES.retry_exchange and again.routing_key == "mail"
    assert again.headers == {RETRY_DELAY_HEADER: delay, DEFERRALS_HEADER: (deferred or 0) + 1}
    assert (again.job.id, again.job.attempt) == (job.id, 3)  # not counted


def settled_once(headers: dict[str, Any]) -> tuple[Job, StubChannel]:
    channel = StubChannel()
    channel.consume("q", lambda d: None)
    job = Job(type="mail")
    delivery = channel.deliver(job, headers=headers)
    settler(channel).defer(job, delivery, "mail_in_flight", "held", time.monotonic())
    return job, channel


@pytest.mark.parametrize("count", [-1, "2", True, 1.5, 800])
def test_deferrals_past_twice_the_longest_run_or_not_sane_retry_as_a_passing_fault(
    count: object,
) -> None:
    """800 deferrals: over 660 s of waiting at these steps, twice what a job can run (the
    default JOB_TIME_LIMIT, 300 s, and its 30 s grace), so the holder is no slow sender but
    a loop; a count that is not a sane integer counts as all of them spent."""
    job, channel = settled_once({DEFERRALS_HEADER: count})
    retrying, again = channel.published
    assert again.job.attempt == job.attempt + 1  # counted now
    assert again.headers == {RETRY_DELAY_HEADER: "100"}
    retrying = decode_event(retrying.body)
    assert retrying.error is not None and retrying.error.kind == "mail_in_flight"
    assert "still held" in retrying.error.message


def test_deferrals_within_twice_the_longest_run_are_free() -> None:
    job, channel = settled_once({DEFERRALS_HEADER: 700})  # 630 s waited at these steps
    _, again = channel.published
    assert again.job.attempt == job.attempt
    assert again.headers == {RETRY_DELAY_HEADER: "900", DEFERRALS_HEADER: 701}


def test_a_deferral_says_why_and_keeps_the_jobs_waits_for_disk_space() -> None:
    _, again, channel = defer_once({DISK_FULL_RETRIES_HEADER: 2})
    assert again.headers[DISK_FULL_RETRIES_HEADER] == 2  # no fresh allowance by way of a deferral
    retrying = decode_event(channel.published[0].body)
    assert retrying.error is not None and retrying.error.kind == "mail_in_flight"
    assert retrying.error.message == "another mailer sends it"


def test_a_handler_deferring_its_job_is_not_counted_an_attempt(
    rigs: list[Rig], tmp_path: Path
) -> None:
    def held_elsewhere(job: Job, blobs: Any) -> list[str]:
        raise JobDeferred("another mailer sends it", kind="mail_in_flight")

    rigs.append(rig := Rig(tmp_path, held_elsewhere))
    rig.deliver(Job(type="resize", attempt=2))  # the rig's budget: one retry, spent
    rig.settle_until(rig.settled(1))
    again = rig.channel.published[-1]  # job.retrying, then the copy
    assert (again.message_type, again.job.attempt) == ("resize", 2)
    assert again.headers is not None and again.headers[DEFERRALS_HEADER] == 1
    assert rig.channel.settled() == [("ack", 1)]
