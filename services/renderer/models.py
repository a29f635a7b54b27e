"""Template data validated by the renderer: schema errors become PermanentJobErrors that name
the field (`data.blocks.2.table.rows.0: …`). The models are in shared/jobtypes/render_data.py,
where the gateway checks the same data at submission."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import PermanentJobError
from shared.jobtypes.models import first_error

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_data(model: type[ModelT], data: Any, template: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        more = f" (and {e.error_count() - 1} more errors)" if e.error_count() > 1 else ""
        raise PermanentJobError(
            f"invalid {template} data: {first_error(e, 'data')}{more}", kind="invalid_data"
        ) from None
