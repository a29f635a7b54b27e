"""The multipart form of a job type that takes an upload: one field per params field (as its
declaration reads it), the `file` itself, and `then` (a follow-up job as JSON).

Unknown fields are an error (422 naming them), as in a JSON body. Form fields are text, so
this model is the one lax model of the suite: it reads `width=800` as the integer 800 (and
refuses `width=true`) before the type's strict params model validates the values.
"""

from __future__ import annotations

from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from services.gateway.checks import refused_as_422
from services.gateway.rejections import validation_error
from shared.jobtypes import JobTypeSpec


def form_model(spec: JobTypeSpec[Any, Any]) -> type[BaseModel]:
    """`<Type>Form`: the params model's fields (types, limits and defaults as there), but
    for those the declaration reads otherwise from a form (`spec.form`)."""
    assert spec.upload is not None, f"{spec.name} takes no upload"
    fields: dict[str, Any] = {}
    for name, info in spec.params.model_fields.items():
        special = spec.form.get(name)
        if special is None:
            fields[name] = (info.annotation, info)
        else:
            fields[name] = (
                special.annotation,
                Field(default=None, description=special.description),
            )
    fields["file"] = (UploadFile, Field(description=spec.upload.description))
    fields["then"] = (str | None, Field(default=None, description="a follow-up job as JSON"))
    return create_model(
        f"{spec.name.title()}Form",
        # Not strict: text to numbers happens here, explicitly declared by each field's type.
        # The params' own rules for the OpenAPI document (e.g. width, height or sizes).
        __config__=ConfigDict(
            extra="forbid",
            strict=False,
            json_schema_extra=spec.params.model_config.get("json_schema_extra"),
        ),
        __doc__=f"`POST /jobs/{spec.name}`: the upload, its params, and optionally a follow-up.",
        **fields,
    )


def params_from_form(spec: JobTypeSpec[Any, Any], form: BaseModel) -> BaseModel:
    """The job's params from its form; a 422 naming the field when they do not fit."""
    values = {}
    for name in spec.params.model_fields:
        value = getattr(form, name)
        special = spec.form.get(name)
        if special is not None:
            with refused_as_422():
                value = special.parse(value)
        if value is not None:
            values[name] = value
    try:
        return spec.request_model.model_validate(values)
    except ValidationError as e:
        raise validation_error(e, "body") from None
