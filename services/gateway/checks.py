"""What the gateway checks of a submission beyond its params model: its job type's limits,
and each follow-up (`then`) with its own job type's declaration, so a bad follow-up is
refused now rather than failing later in a worker. Every refusal is a 422 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ValidationError

from services.gateway.rejections import field_error, validation_error
from shared import strictjson
from shared.config import Settings
from shared.jobtypes import JOB_TYPES, JobTypeSpec, ParamsRefused, job_type
from shared.messages import FollowUp

MAX_FOLLOW_UPS = 5
Limits = Mapping[str, Any]
"""Each job type's limits (`JobTypeSpec.limits`), by its name."""


def limits_of(settings: Settings) -> Limits:
    """Every job type's limits, read once when the gateway starts."""
    return {spec.name: spec.limits(settings) for spec in JOB_TYPES}


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
    where: tuple[str, ...] = ("then",)
    depth = 0
    while then is not None:
        depth += 1
        if depth > MAX_FOLLOW_UPS:
            raise field_error(where, f"at most {MAX_FOLLOW_UPS} follow-up jobs in a chain")
        spec = job_type(then.type)
        try:
            params = spec.request_model.model_validate(then.params)
        except ValidationError as e:
            raise validation_error(e, "body", *where, "params") from None
        check_params(spec, params, limits, *where, "params")
        then, where = then.then, (*where, "then")


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
