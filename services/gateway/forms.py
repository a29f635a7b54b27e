"""The multipart form of a job type that takes an upload: one field per params field (as its
declaration reads it), the `file` itself, and `then` (a follow-up job as JSON).

Unknown fields are an error (422 naming them), as in a JSON body. Form fields are text, so
this model is the one lax model of the suite: it reads `width=800` as the integer 800 (and
refuses `width=true`) before the type's strict params model validates the values.

The route reads the form into the model itself (`read_form_model`), as FastAPI would for a
form parameter: FastAPI's mapping asked each field's annotation a dozen questions on every
request, a tenth of an upload's CPU in the gateway (docs/performance-history.md). The OpenAPI
document names the model all the same (`request_body`).
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile

from services.gateway.checks import refused_as_422
from services.gateway.rejections import validation_error
from shared.jobtypes import JOB_TYPES, JobTypeSpec


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


# Each job type that takes an upload: its form model, made once for its route and the
# OpenAPI document.
FORM_MODELS: dict[str, type[BaseModel]] = {
    spec.name: form_model(spec) for spec in JOB_TYPES if spec.upload
}


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


def list_fields(form_type: type[BaseModel]) -> frozenset[str]:
    """The fields that take a list (`list[X]`, or a union with one): a form gives them by
    repeating the field."""
    return frozenset(
        name
        for name, info in form_type.model_fields.items()
        if any(get_origin(a) is list for a in (info.annotation, *get_args(info.annotation)))
    )


def read_form_model(form_type: type[BaseModel], lists: frozenset[str], form: FormData) -> BaseModel:
    """The form as `form_type` (`lists`: its `list_fields`), read as FastAPI reads a form
    model: a field given empty (text `""`, a file input left empty, no item of a list) is
    one not given, so its default applies; a field the model does not know goes to the
    model as it came, so it is refused by name. A 422 in FastAPI's shape when it does not
    fit."""
    values: dict[str, Any] = {}
    for name in form_type.model_fields:
        value: Any
        if name in lists:
            value = [item for item in form.getlist(name) if not _empty_file(item)]
            if not value:
                continue
        else:
            value = form.get(name)
            if value is None or value == "" or _empty_file(value):
                continue
        values[name] = value
    extra: dict[str, list[Any]] = {}
    for name, value in form.multi_items():
        if name not in form_type.model_fields:
            extra.setdefault(name, []).append(value)
    values.update({name: got[0] if len(got) == 1 else got for name, got in extra.items()})
    try:
        return form_type.model_validate(values)
    except ValidationError as e:
        raise validation_error(e, "body") from None


def _empty_file(value: object) -> bool:
    """What a browser sends for a file input with no file chosen."""
    return isinstance(value, StarletteUploadFile) and value.filename == "" and value.size == 0


def request_body(form_type: type[BaseModel]) -> dict[str, Any]:
    """The operation's `requestBody` in the OpenAPI document: the form, as the model
    (added to the document's schemas by apidoc.py)."""
    schema = {"$ref": f"#/components/schemas/{form_type.__name__}"}
    return {"content": {"multipart/form-data": {"schema": schema}}, "required": True}
