"""A job's status follows the lifecycle, not the order its events arrived in."""

from __future__ import annotations

import itertools
import random

from services.audit.lifecycle import fold, lifecycle_order
from shared.messages import Event
from tests.support.audit import T0, make_event, new_job_id

JOB = new_job_id()


def retried_then_succeeded() -> list[Event]:
    return [
        make_event("job.submitted", JOB, seconds=0),
        make_event("job.started", JOB, attempt=1, seconds=1),
        make_event("job.retrying", JOB, attempt=1, seconds=2, error=("transient", "smtp down")),
        make_event("job.started", JOB, attempt=2, seconds=3),
        make_event("job.succeeded", JOB, attempt=2, seconds=4, outputs=["o/1"], duration_ms=9.5),
    ]


def test_events_in_order_give_the_final_state() -> None:
    state = fold(JOB, retried_then_succeeded())

    assert state.status == "succeeded"
    assert state.attempts == 2
    assert state.outputs == ["o/1"]
    assert state.duration_ms == 9.5
    assert state.error is None
    assert state.submitted_at == T0
    assert (state.started_at - T0).seconds == 1
    assert (state.finished_at - T0).seconds == 4


def test_every_arrival_order_gives_the_same_state() -> None:
    events = retried_then_succeeded()
    expected = fold(JOB, events)
    for order in itertools.permutations(events):
        assert fold(JOB, list(order)) == expected


def test_started_overtaking_submitted_still_shows_started() -> None:
    state = fold(JOB, [make_event("job.started", JOB), make_event("job.submitted", JOB)])
    assert state.status == "started"


def test_a_late_started_never_overwrites_a_terminal_state() -> None:
    succeeded = make_event("job.succeeded", JOB, outputs=["x"])
    late = make_event("job.started", JOB, seconds=-1)
    assert fold(JOB, [succeeded, late]).status == "succeeded"
    failed = make_event("job.failed", JOB, error=("invalid_params", "no width"))
    assert fold(JOB, [failed, late]).status == "failed"


def test_a_retry_of_an_earlier_attempt_does_not_undo_a_later_start() -> None:
    events = [
        make_event("job.started", JOB, attempt=2, seconds=3),
        make_event("job.retrying", JOB, attempt=1, seconds=2, error=("transient", "x")),
    ]
    assert fold(JOB, events).status == "started"


def test_failed_then_dead_ends_dead_with_the_failures_error() -> None:
    events = [
        make_event("job.dead", JOB, seconds=2, error=("rejected", "dead-lettered from jobs.x")),
        make_event("job.started", JOB, seconds=0),
        make_event("job.failed", JOB, seconds=1, error=("invalid_params", "width: bad")),
    ]
    state = fold(JOB, events)

    assert state.status == "dead"
    assert state.dead_reason == "rejected"
    assert state.error is not None and state.error.kind == "invalid_params"
    assert (state.finished_at - T0).seconds == 1


def test_dead_without_a_failure_keeps_the_dead_letters_reason_as_error() -> None:
    state = fold(JOB, [make_event("job.dead", JOB, error=("delivery_limit", "from jobs.x"))])
    assert state.status == "dead"
    assert state.error is not None and state.error.kind == "delivery_limit"
    assert state.type == "resize"


def replayed_then_succeeded() -> list[Event]:
    return [
        make_event("job.submitted", JOB, seconds=0),
        make_event("job.started", JOB, seconds=1),
        make_event("job.failed", JOB, seconds=2, error=("scripted", "flag set")),
        make_event("job.dead", JOB, seconds=3, error=("rejected", "from jobs.resize")),
        make_event("job.replayed", JOB, seconds=10),
        make_event("job.started", JOB, seconds=11),
        make_event("job.succeeded", JOB, seconds=12, outputs=["o"]),
    ]


def test_a_replay_reopens_a_dead_job_and_its_attempts_keep_counting() -> None:
    events = replayed_then_succeeded()
    reopened = fold(JOB, events[:5])
    assert reopened.status == "submitted"
    assert reopened.error is None and reopened.dead_reason is None
    assert reopened.attempts == 1 and reopened.replays == 1

    done = fold(JOB, events)
    assert done.status == "succeeded"
    assert done.attempts == 2
    assert done.submitted_at == T0


def test_a_replayed_jobs_order_does_not_depend_on_arrival() -> None:
    events = replayed_then_succeeded()
    rng = random.Random(7)
    for _ in range(200):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert fold(JOB, shuffled).status == "succeeded"


def test_a_replayed_job_that_dies_again_is_dead_again() -> None:
    events = [
        *replayed_then_succeeded()[:6],
        make_event("job.failed", JOB, seconds=12, error=("scripted", "still broken")),
        make_event("job.dead", JOB, seconds=13, error=("rejected", "again")),
    ]
    state = fold(JOB, list(reversed(events)))
    assert state.status == "dead"
    assert state.error is not None and state.error.message == "still broken"
    assert state.attempts == 2 and state.replays == 1


def test_lifecycle_order_sorts_replay_epochs_then_attempts_then_phases() -> None:
    events = replayed_then_succeeded()
    assert [e.event for e in lifecycle_order(list(reversed(events)))] == [e.event for e in events]


def test_naive_times_are_taken_as_utc() -> None:
    naive = make_event("job.started", JOB).model_copy(update={"at": T0.replace(tzinfo=None)})
    assert fold(JOB, [naive, make_event("job.replayed", JOB, seconds=1)]).status == "submitted"
