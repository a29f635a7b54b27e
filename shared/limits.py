"""Every limit on a job, one set for the gateway and the workers, so a job put straight on a
queue gets no further than one sent through the gateway.

The gateway checks a submission with its job type's `check` and `policy` and each follow-up
in `then` the same way (services/gateway/checks.py, with its request models and 422/403
answers). Every worker runs `check_job` on each job it takes, before it runs it
(shared/worker/checks.py): the chain's depth, then the job's params and every follow-up's
params against their job type's model, limits and policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from shared.config import Settings
from shared.jobtypes import JOB_TYPES, ParamsRefused, job_type
from shared.jobtypes.models import first_error
from shared.messages import FollowUp, Job, follow_ups

MAX_FOLLOW_UPS = 5
"""Follow-up jobs in one `then` chain (a job and five follow-ups: six jobs at most)."""

Limits = Mapping[str, Any]
"""Each job type's limits (`JobTypeSpec.limits`), by its name."""


def limits_of(settings: Settings) -> Limits:
    """Every job type's limits, read once at start."""
    return {spec.name: spec.limits(settings) for spec in JOB_TYPES}


def follow_up_depth(then: FollowUp | None) -> int:
    return sum(1 for _ in follow_ups(then))


def check_depth(then: FollowUp | None) -> None:
    depth = follow_up_depth(then)
    if depth > MAX_FOLLOW_UPS:
        raise ParamsRefused(
            ("then",),
            f"a chain of {depth} follow-up jobs, over the limit of {MAX_FOLLOW_UPS}",
            "too_many_follow_ups",
        )


def check_params(name: str, params: dict[str, Any], limits: Limits, *where: str) -> None:
    """A follow-up's `params` against job type `name`'s model, `check` and `policy`;
    ParamsRefused naming the field under `where`."""
    spec = job_type(name)
    try:
        model = spec.params.model_validate(params)
    except ValidationError as e:
        message = f"invalid params: {first_error(e, *where)}"
        raise ParamsRefused((), message, "invalid_params") from None
    _check_limits(name, model, limits, where)


def check_job(job: Job, limits: Limits) -> None:
    """What the gateway would have refused of `job`: ParamsRefused naming the field.

    The job's own params are checked against its limits only when they fit its model: those
    that do not are refused by its handler, which validates them with the same model."""
    check_depth(job.then)
    try:
        own = job_type(job.type).params.model_validate(job.params)
    except ValidationError:
        pass
    else:
        _check_limits(job.type, own, limits, ())
    for where, then in follow_ups(job.then):
        check_params(then.type, then.params, limits, *where, "params")


def _check_limits(name: str, model: Any, limits: Limits, where: tuple[str, ...]) -> None:
    spec = job_type(name)
    try:
        spec.check(model, limits[name])
        spec.policy(model, limits[name])
    except ParamsRefused as e:
        raise ParamsRefused((*where, *e.field), e.message, e.kind) from None
