"""The base of every params model, and field types several job types share."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from shared.errors import DecodeError

ModelT = TypeVar("ModelT", bound=BaseModel)


class Strict(BaseModel):
    """Unknown fields are an error, every value must have its declared JSON type (no
    coercion: `"16"` and `true` are not integers), and a validated model cannot change.

    Jobs, their params and template data are validated with these models at both ends: by
    the gateway and again by the worker, for a job put straight on a queue. A field that
    takes two forms says so in its type (`quantity`: an integer or a decimal string). The
    gateway's multipart form is the one place values arrive as text: its own, lax model
    (services/gateway/forms.py) turns them into numbers first.

    Parsed from JSON, only keys go into pydantic's string cache: values (job ids, trace ids,
    blob keys) are new in every message, and cached they filled its 16,384 places over the
    first ten thousand jobs, 1.4 MiB of every process's memory that read as growth.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, cache_strings="keys")


_JSON_NAMES = {int: "an integer", bool: "a boolean"}


def of_json_type(kind: type[int] | type[bool]) -> BeforeValidator:
    """For a Literal of integers or booleans: in Python 1 == 1.0 == True, so without this
    `true` or `1.0` would pass for 1, and `1` for true, even in strict mode."""

    def check(value: Any) -> Any:
        if value is not None and type(value) is not kind:
            raise ValueError(f"Input should be {_JSON_NAMES[kind]}")
        return value

    return BeforeValidator(check)


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
