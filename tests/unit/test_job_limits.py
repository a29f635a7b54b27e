"""shared/limits.py: what the gateway would have refused, checked again by every worker on
the job and each follow-up (chain depth, recipients, attachments, recipient domains)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.amqp import Delivery
from shared.config import Settings
from shared.jobtypes import ParamsRefused
from shared.jobtypes.mail import CheckedMailParams, MailLimits, check_mail
from shared.limits import MAX_FOLLOW_UPS, check_job, limits_of
from shared.messages import FollowUp, Job, encode
from shared.worker.checks import Refusal, check_delivery
from shared.worker.claims import DeliveryBudget
from tests.support.stub_channel import StubChannel

LIMITS = limits_of(Settings(max_recipients=3, max_attachments=2))
BUDGET = DeliveryBudget.of(Settings())
JOB_A = "11111111-1111-4111-8111-111111111111"
JOB_B = "22222222-2222-4222-8222-222222222222"


def mail(**params: Any) -> dict[str, Any]:
    return {"to": ["ann@example.org"], "subject": "s", "text": "t", **params}


def chain(depth: int, last: FollowUp | None = None) -> FollowUp | None:
    then = last
    for _ in range(depth):
        then = FollowUp(type="mail", params=mail(), then=then)
    return then


def refused(job: Job) -> ParamsRefused:
    with pytest.raises(ParamsRefused) as error:
        check_job(job, LIMITS)
    return error.value


def test_a_good_job_with_the_longest_chain_passes() -> None:
    check_job(Job(type="resize", params={"width": 10}, then=chain(MAX_FOLLOW_UPS)), LIMITS)


def test_a_chain_deeper_than_the_gateway_allows_is_refused() -> None:
    error = refused(Job(type="mail", params=mail(), then=chain(50)))
    assert error.kind == "too_many_follow_ups"
    assert str(error) == "then: a chain of 50 follow-up jobs, over the limit of 5"


def test_too_many_recipients_in_the_job_or_in_a_follow_up() -> None:
    crowd = mail(to=["a@example.org", "b@example.org"], cc=["c@example.org"], bcc=["d@test"])
    own = refused(Job(type="mail", params=crowd))
    assert own.kind == "too_many_recipients" and own.field == ("to",)
    deep = refused(
        Job(type="resize", params={"width": 1}, then=chain(1, FollowUp(type="mail", params=crowd)))
    )
    assert deep.kind == "too_many_recipients"
    assert deep.field == ("then", "then", "params", "to")


def test_attachments_over_the_limit_or_listed_twice_are_refused() -> None:
    three = [JOB_A, JOB_B, JOB_B.replace("2", "3")]
    many = refused(Job(type="mail", params=mail(attachments=three)))
    assert many.kind == "too_many_attachments"
    assert "3 attachments, over the limit of 2 (MAX_ATTACHMENTS)" in str(many)
    twice = refused(Job(type="mail", params=mail(attachments=[JOB_A, JOB_A])))
    assert twice.kind == "duplicate_attachment" and twice.field == ("attachments", 1)
    assert f"job '{JOB_A}' is listed twice (at 0 and 1)" in str(twice)
    upper = refused(Job(type="mail", params=mail(attachments=[JOB_A, JOB_B, JOB_A.upper()])))
    assert upper.kind == "duplicate_attachment" and upper.field == ("attachments", 2)
    thousands = refused(Job(type="mail", params=mail(attachments=[JOB_A] * 2000)))
    assert thousands.kind == "duplicate_attachment"  # named before it is counted


def test_a_recipient_outside_the_allowed_domains_is_refused_naming_it() -> None:
    error = refused(Job(type="mail", params=mail(bcc=["Eve <eve@evil.example.net.com>"])))
    assert error.kind == "recipient_not_allowed" and error.field == ("bcc", 0)
    assert "mail to eve@evil.example.net.com is not allowed" in str(error)
    follow_up = FollowUp(type="mail", params=mail(cc=["x@gmail.com"]))
    deep = refused(Job(type="render", params={"template": "document"}, then=follow_up))
    assert deep.field == ("then", "params", "cc", 0)


def test_a_follow_up_whose_params_do_not_fit_its_model_is_refused() -> None:
    bad = FollowUp(type="mail", params={"subject": "no recipients"})
    error = refused(Job(type="resize", params={"width": 1}, then=bad))
    assert error.kind == "invalid_params"
    assert str(error).startswith("invalid params: then.params.to: Field required")


def test_own_params_that_do_not_fit_are_left_to_the_handler() -> None:
    check_job(Job(type="mail", params={"sleep": 1}), LIMITS)  # the mailer refuses it


def test_the_gateway_and_the_worker_share_one_check_for_mail() -> None:
    params = CheckedMailParams.model_validate(mail(attachments=[JOB_A, JOB_A]))
    with pytest.raises(ParamsRefused, match="listed twice"):
        check_mail(params, MailLimits(max_recipients=3, max_bytes=100, max_attachments=5))


def _delivery(job: Job) -> Delivery:
    return Delivery(StubChannel(), 1, encode(job), job.id, {}, False)


def test_the_worker_refuses_a_job_over_its_limits_with_a_job_failed_of_its_kind() -> None:
    job = Job(type="mail", params=mail(to=["eve@gmail.com"]))
    verdict = check_delivery(_delivery(job), "mail", BUDGET, lambda _j: False, LIMITS)
    assert isinstance(verdict, Refusal) and verdict.job == job
    assert verdict.failure_kind == "recipient_not_allowed"
    assert verdict.failure.startswith("to.0: mail to eve@gmail.com is not allowed")


def test_a_job_finished_before_the_limits_changed_goes_on_to_succeed_again() -> None:
    job = Job(type="mail", params=mail(to=["eve@gmail.com"]))
    assert check_delivery(_delivery(job), "mail", BUDGET, lambda _j: True, LIMITS) == job
