"""What the gateway checks of a submission beyond its params model: its job type's limits,
and each follow-up (`then`) with its own job type's declaration, so a bad follow-up is
refused now rather than failing later in a worker. Every refusal is a 422 naming the field;
then, last, the job type's policy (mail recipients in MAIL_ALLOWED_DOMAINS): a 403.

Workers check the same limits, policy and chain depth again (shared/limits.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ValidationError

from services.gateway.rejections import Rejected, field_error, validation_error
from shared import strictjson
from shared.jobtypes import JobTypeSpec, ParamsRefused, job_type
from shared.limits import Limits, check_depth
from shared.messages import FollowUp, follow_ups


@contextmanager
def refused_as_422(*where: str) -> Iterator[None]:
    """A ParamsRefused inside the block becomes a 422 naming the field under `where`."""
    try:
        yield
    except ParamsRefused as e:
        raise field_error((*where, *e.field), e.message, e.kind) from None


def check_params(
    spec: JobTypeSpec[Any, Any], params: BaseModel, limits: Limits, *where: str
) -> None:
    with refused_as_422(*where):
        spec.check_request(params, limits[spec.name])


def job_params(request: BaseModel) -> dict[str, Any]:
    """The params a job message carries for a request (its follow-up travels apart)."""
    return request.model_dump(mode="json", exclude={"then"}, exclude_none=True)


def check_follow_up(then: FollowUp | None, limits: Limits) -> None:
    """Validate each follow-up's params with its job type's request model and limits."""
    with refused_as_422():
        check_depth(then)
    for where, follow_up in follow_ups(then):
        spec = job_type(follow_up.type)
        try:
            params = spec.request_model.model_validate(follow_up.params)
        except ValidationError as e:
            raise validation_error(e, "body", *where, "params") from None
        check_params(spec, params, limits, *where, "params")


def check_policy(
    spec: JobTypeSpec[Any, Any], params: BaseModel, then: FollowUp | None, limits: Limits
) -> None:
    """The job's and each follow-up's policy (mail to a domain not allowed): a 403 naming the
    field and the address. Runs last, after the 422s and ownership's 404s, so a refusal here
    says nothing about a job the client may not see."""
    with refused_as_403():
        spec.check_policy(params, limits[spec.name])
    for where, follow_up in follow_ups(then):
        follow_up_spec = job_type(follow_up.type)
        model = follow_up_spec.request_model.model_validate(follow_up.params)  # checked: valid
        with refused_as_403(*where, "params"):
            follow_up_spec.check_policy(model, limits[follow_up_spec.name])


@contextmanager
def refused_as_403(*where: str) -> Iterator[None]:
    """A policy's ParamsRefused inside the block becomes a 403 naming the field under `where`."""
    try:
        yield
    except ParamsRefused as e:
        field = ".".join(str(part) for part in (*where, *e.field))
        raise Rejected(403, e.kind, f"{field}: {e.message}") from None


def parse_follow_up(text: str | None) -> FollowUp | None:
    """The `then` form field of a multipart request: a follow-up job as JSON."""
    if text is None or not text.strip():
        return None
    try:
        return FollowUp.model_validate(strictjson.loads(text))
    except strictjson.BadJSONValue as e:
        raise field_error(("then", *e.path), e.message, e.kind) from None
    except json.JSONDecodeError as e:
        raise field_error(("then",), f"not JSON: {e}") from None
    except ValidationError as e:
        raise validation_error(e, "body", "then") from None
