"""Pieces of template data shared by several templates, and turning schema errors into
PermanentJobErrors that name the field (`data.blocks.2.table.rows.0: …`)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from shared.errors import PermanentJobError

ModelT = TypeVar("ModelT", bound=BaseModel)

Text = Annotated[str, Field(max_length=100_000)]
Line = Annotated[str, Field(min_length=1, max_length=500)]
# A table cell: text, a number (right-aligned) or a boolean; null prints as an empty cell.
Cell = str | StrictBool | StrictInt | StrictFloat | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_data(model: type[ModelT], data: Any, template: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        where = ".".join(["data", *(str(p) for p in first["loc"])])
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        message = first["msg"].removeprefix("Value error, ")
        raise PermanentJobError(
            f"invalid {template} data: {where}: {message}{more}", kind="invalid_data"
        ) from None
