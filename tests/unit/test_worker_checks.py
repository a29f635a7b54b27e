"""What a delivery must be before any job thread sees it, and how much of what it claims
about its past (attempt, delivery count) is believed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.amqp import Delivery
from shared.config import Settings
from shared.limits import limits_of
from shared.messages import Job, encode
from shared.worker.checks import Refusal, check_delivery
from shared.worker.claims import DeliveryBudget
from tests.support.stub_channel import StubChannel

# MAX_DELIVERIES 5, RETRY_DELAYS_MS two steps: at most 3 attempts.
LIMITS = limits_of(Settings())
BUDGET = DeliveryBudget.of(replace(Settings(), max_deliveries=5, retry_delays_ms=(100, 200)))
RETRY_DEATH = {"queue": "jobs.retry.200", "reason": "expired", "count": 1, "exchange": "jobs.retry"}


def delivery(
    body: bytes, count: int = 0, *, redelivered: bool | None = None, **headers: Any
) -> Delivery:
    if count:
        headers["x-delivery-count"] = count
    redelivered = count > 0 if redelivered is None else redelivered
    return Delivery(StubChannel(), 1, body, "m1", headers, redelivered)


def never_finished(_job: Job) -> bool:
    return False


def test_a_job_of_the_type_is_accepted() -> None:
    job = Job(type="resize")
    assert check_delivery(delivery(encode(job)), "resize", BUDGET, never_finished, LIMITS) == job


def test_a_message_that_is_not_a_job_is_refused_with_a_preview() -> None:
    verdict = check_delivery(delivery(b"not json"), "resize", BUDGET, never_finished, LIMITS)
    assert isinstance(verdict, Refusal) and verdict.job is None
    assert verdict.log_event == "undecodable_message_dead_lettered"
    assert verdict.log_fields["body_preview"] == "not json"


def test_a_job_of_another_type_is_refused() -> None:
    verdict = check_delivery(
        delivery(encode(Job(type="mail"))), "resize", BUDGET, never_finished, LIMITS
    )
    assert isinstance(verdict, Refusal)
    assert verdict.log_event == "wrong_job_type_dead_lettered"
    assert verdict.failure_kind is None


def test_a_job_at_its_delivery_limit_is_refused_with_a_job_failed() -> None:
    job = Job(type="resize")
    verdict = check_delivery(
        delivery(encode(job), count=5), "resize", BUDGET, never_finished, LIMITS
    )
    assert isinstance(verdict, Refusal) and verdict.job == job
    assert verdict.failure_kind == "delivery_limit"
    assert verdict.failure == "delivered 6 times without finishing"


def test_a_job_at_its_delivery_limit_whose_outputs_are_recorded_goes_on() -> None:
    job = Job(type="resize")
    assert (
        check_delivery(delivery(encode(job), count=5), "resize", BUDGET, lambda _j: True, LIMITS)
        == job
    )


def test_below_the_limit_nothing_is_asked_of_the_blob_store() -> None:
    def must_not_ask(_job: Job) -> bool:
        raise AssertionError("asked")

    job = Job(type="resize")
    assert (
        check_delivery(delivery(encode(job), count=4), "resize", BUDGET, must_not_ask, LIMITS)
        == job
    )


# --- claims about the past ------------------------------------------------------------


def test_a_delivery_count_on_a_first_delivery_is_not_believed() -> None:
    job = Job(type="resize")
    with capture_logs() as logs:
        verdict = check_delivery(
            delivery(encode(job), count=999, redelivered=False),
            "resize",
            BUDGET,
            never_finished,
            LIMITS,
        )

    assert verdict == job
    [warning] = [e for e in logs if e["event"] == "delivery_count_not_believed"]
    assert (warning["claimed"], warning["log_level"]) == (999, "warning")


def test_a_delivery_count_above_the_queues_delivery_limit_is_not_believed() -> None:
    job = Job(type="resize")
    assert (
        check_delivery(delivery(encode(job), count=6), "resize", BUDGET, never_finished, LIMITS)
        == job
    )


def test_a_redelivered_count_within_the_limit_is_believed() -> None:
    verdict = check_delivery(
        delivery(encode(Job(type="resize")), count=5), "resize", BUDGET, never_finished, LIMITS
    )
    assert isinstance(verdict, Refusal) and verdict.failure_kind == "delivery_limit"


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_an_attempt_within_the_retry_budget_is_believed(attempt: int) -> None:
    job = Job(type="resize", attempt=attempt)
    assert check_delivery(delivery(encode(job)), "resize", BUDGET, never_finished, LIMITS) == job


def test_an_attempt_beyond_the_retry_budget_counts_as_the_first_with_a_warning() -> None:
    job = Job(type="resize", attempt=999)
    with capture_logs() as logs:
        verdict = check_delivery(delivery(encode(job)), "resize", BUDGET, never_finished, LIMITS)

    assert isinstance(verdict, Job) and verdict.attempt == 1
    assert verdict == job.model_copy(update={"attempt": 1})
    [warning] = [e for e in logs if e["event"] == "attempt_not_believed"]
    assert (warning["claimed"], warning["max_attempts"]) == (999, 3)


def test_an_attempt_beyond_the_budget_stands_when_the_broker_returned_it_from_a_retry_queue() -> (
    None
):
    # RETRY_DELAYS_MS was cut while the job waited: it gives up at its next passing fault.
    job = Job(type="resize", attempt=5)
    d = delivery(encode(job), **{"x-death": [RETRY_DEATH]})
    assert check_delivery(d, "resize", BUDGET, never_finished, LIMITS) == job


@pytest.mark.parametrize(
    "deaths",
    [
        [{**RETRY_DEATH, "queue": "jobs.resize"}],  # not a retry queue
        [{**RETRY_DEATH, "reason": "rejected"}],  # not its TTL
        [{**RETRY_DEATH, "queue": "other-ns.jobs.retry.200"}],  # another namespace's
        "jobs.retry.200",
        [["jobs.retry.200", "expired"]],
    ],
)
def test_other_deaths_are_no_evidence_for_an_attempt_beyond_the_budget(deaths: Any) -> None:
    job = Job(type="resize", attempt=5)
    verdict = check_delivery(
        delivery(encode(job), **{"x-death": deaths}), "resize", BUDGET, never_finished, LIMITS
    )
    assert isinstance(verdict, Job) and verdict.attempt == 1
