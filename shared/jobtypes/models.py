"""The base of every params model, and field types several job types share."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import DecodeError

ModelT = TypeVar("ModelT", bound=BaseModel)


class Strict(BaseModel):
    """Unknown fields are an error, and a validated model cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def first_error(e: ValidationError, *prefix: str) -> str:
    """`where: what` of a validation error's first complaint, for one-line messages; `where`
    starts with `prefix` (e.g. "data") when the model validated part of something larger."""
    err = e.errors(include_url=False, include_input=False)[0]
    message = err["msg"].removeprefix("Value error, ")
    where = ".".join([*prefix, *(str(p) for p in err["loc"])])
    return f"{where}: {message}" if where else message


def parse_params(model: type[ModelT], params: dict[str, Any]) -> ModelT:
    """Validate a job's params; the caller turns the DecodeError into a PermanentJobError."""
    try:
        return model.model_validate(params)
    except ValidationError as e:
        raise DecodeError(f"invalid params: {first_error(e)}") from None
