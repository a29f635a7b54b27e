"""What a delivery must be before any job thread sees it."""

from __future__ import annotations

from shared.amqp import Delivery
from shared.config import Settings
from shared.limits import limits_of
from shared.messages import Job, encode
from shared.worker.checks import Refusal, check_delivery
from tests.support.stub_channel import StubChannel

LIMITS = limits_of(Settings())


def delivery(body: bytes, count: int = 0) -> Delivery:
    headers = {"x-delivery-count": count} if count else {}
    return Delivery(StubChannel(), 1, body, "m1", headers, count > 0)


def never_finished(_job: Job) -> bool:
    return False


def test_a_job_of_the_type_is_accepted() -> None:
    job = Job(type="resize")
    assert check_delivery(delivery(encode(job)), "resize", 5, never_finished, LIMITS) == job


def test_a_message_that_is_not_a_job_is_refused_with_a_preview() -> None:
    verdict = check_delivery(delivery(b"not json"), "resize", 5, never_finished, LIMITS)
    assert isinstance(verdict, Refusal) and verdict.job is None
    assert verdict.log_event == "undecodable_message_dead_lettered"
    assert verdict.log_fields["body_preview"] == "not json"


def test_a_job_of_another_type_is_refused() -> None:
    verdict = check_delivery(
        delivery(encode(Job(type="mail"))), "resize", 5, never_finished, LIMITS
    )
    assert isinstance(verdict, Refusal)
    assert verdict.log_event == "wrong_job_type_dead_lettered"
    assert verdict.failure_kind is None


def test_a_job_at_its_delivery_limit_is_refused_with_a_job_failed() -> None:
    job = Job(type="resize")
    verdict = check_delivery(delivery(encode(job), count=5), "resize", 5, never_finished, LIMITS)
    assert isinstance(verdict, Refusal) and verdict.job == job
    assert verdict.failure_kind == "delivery_limit"
    assert verdict.failure == "delivered 6 times without finishing"


def test_a_job_at_its_delivery_limit_whose_outputs_are_recorded_goes_on() -> None:
    job = Job(type="resize")
    assert (
        check_delivery(delivery(encode(job), count=5), "resize", 5, lambda _j: True, LIMITS) == job
    )


def test_below_the_limit_nothing_is_asked_of_the_blob_store() -> None:
    def must_not_ask(_job: Job) -> bool:
        raise AssertionError("asked")

    job = Job(type="resize")
    assert check_delivery(delivery(encode(job), count=4), "resize", 5, must_not_ask, LIMITS) == job
