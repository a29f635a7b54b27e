"""Template data validated by the renderer: schema errors become PermanentJobErrors that name
the field (`data.blocks.2.table.rows.0: …`). The models are in shared/jobtypes/render_data.py,
where the gateway checks the same data at submission."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import PermanentJobError

ModelT = TypeVar("ModelT", bound=BaseModel)


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
