"""The gateway's OpenAPI document, completed so it says what the server accepts and answers.

FastAPI writes the document from the routes and models; this adds what it cannot know:
every refusal a route can give (401 from the key check, 429 from the rate limit, 400/403
from the Host and Origin guard, 413 from the body limit, …) with its body (`Refusal`), the
response headers clients act on, a render request's `data` as its template's model and a
follow-up's `params` as its job type's, and the limits this gateway runs with (MAX_OUTPUT_SIDE,
MAX_RECIPIENTS, MAX_ATTACHMENTS).

What JSON Schema cannot say stays with the server alone, refused with a 422 naming the
field: an address over 254 characters, recipients over the limit across to, cc and bcc
together, text and html over MAX_MAIL_BYTES, an attachment listed twice in another case,
a table's rows of unequal length, a resize form's `sizes` over MAX_OUTPUT_SIDE, the form's
`then` (JSON inside a text field).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.gateway.forms import FORM_MODELS
from shared.config import Settings
from shared.jobtypes import JOB_TYPES
from shared.jobtypes.render_data import TEMPLATE_DATA

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"
_SUBMIT_PATHS = {f"/jobs/{spec.name}" for spec in JOB_TYPES}
_OPEN_PATHS = {"/healthz", "/readyz"}
# The key every other path needs (shared.auth.RequireKey checks it, before any route).
BEARER_SCHEME = "HTTPBearer"
_SECURITY_SCHEMES: Schema = {
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key: `jobsuite keys create NAME`",
    }
}
REFUSAL: Schema = {
    "title": "Refusal",
    "description": "Why a request was refused: a sentence, or (422) one entry per field.",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": REF.format(model="ValidationError")}},
            ]
        },
        "reason": {"type": "string", "description": "a short name for the refusal"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}


_TRACE_ANSWER: Schema = {
    "description": "the W3C trace of the job and its follow-ups (the caller's, continued)",
    "required": True,
    "schema": {"type": "string"},
}
_TRACE_PARAMETER: Schema = {
    "name": "traceparent",
    "in": "header",
    "required": False,
    "description": "W3C Trace Context: the job and its follow-ups join this trace; without"
    " it (or when it is not valid) the gateway starts one",
    "schema": {"type": "string"},
}


def _header(description: str, *, required: bool = False) -> Schema:
    return {"description": description, "required": required, "schema": {"type": "string"}}


def _refusal(description: str, headers: Schema | None = None) -> Schema:
    answer: Schema = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Refusal")}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


# Every route behind the guard and the key.
_GUARDED = {
    "400": _refusal("a Host not in ALLOWED_HOSTS, or a body that is not what it says it is"),
    "401": _refusal(
        "no API key, or an unknown, revoked, expired or malformed one",
        {"WWW-Authenticate": _header("the scheme to use", required=True)},
    ),
    "503": _refusal("the API key store is unavailable", _RETRY_AFTER),
}
_SUBMISSION = {
    "403": _refusal(
        "a request from a foreign Origin, a mail recipient outside MAIL_ALLOWED_DOMAINS, or "
        "an attachment of another client's job"
    ),
    "404": _refusal("a job named in the request (an attachment) does not exist"),
    "409": _refusal("the Idempotency-Key was used for a different request"),
    "413": _refusal("a body over MAX_UPLOAD_BYTES"),
    "415": _refusal("a body of another media type, or (upload) not a JPEG, PNG, WebP or GIF"),
    "422": _refusal("a field that is missing, unknown or not acceptable: `loc` names it"),
    "429": _refusal(
        "the key submits faster than its rate, or over its hourly mail count",
        {"Retry-After": _header("seconds to wait", required=True)},
    ),
    "503": _refusal(
        "the broker or the blob store cannot take the job now (nothing was kept)", _RETRY_AFTER
    ),
}
_READ = {
    "404": _refusal("no such job (or not the caller's)"),
    "422": _refusal("the id is not a job id"),
    "503": _refusal("the audit service is unreachable and the job is unfinished", _RETRY_AFTER),
}
_DOWNLOAD = {
    "206": {
        "description": "the byte range asked for",
        "headers": {"Content-Range": _header("bytes start-end/size", required=True)},
        "content": {"image/*": _BINARY, "application/pdf": _BINARY},
    },
    "307": {
        "description": "RESULT_REDIRECT with an S3 blob store: the file is at `Location`, a"
        " presigned URL valid for 5 minutes (send the same Range there)",
        "headers": {"Location": _header("the presigned URL of the file", required=True)},
    },
    "409": _refusal("the job failed or has not finished yet"),
    "410": _refusal("the job's outputs were deleted (DELETE /jobs/{id}, BLOB_RETENTION_DAYS)"),
    "416": {
        "description": "the range lies past the end of the file",
        "headers": {"Content-Range": _header("bytes */size", required=True)},
    },
}


_DELETE = {
    "409": _refusal("the job has not finished (submitted, started or retrying)"),
    "503": _refusal(
        "the audit service is unreachable and the job is unfinished, or the broker or the blob"
        " store is unavailable (nothing recorded, or some blobs left: delete again)",
        _RETRY_AFTER,
    ),
}


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the completed document at `/openapi.json` (and to `/docs`, `/redoc`)."""

    def openapi() -> Schema:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(document, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: Schema, settings: Settings) -> Schema:
    components: Schema = document.setdefault("components", {})
    components["securitySchemes"] = copy.deepcopy(_SECURITY_SCHEMES)
    schemas: Schema = components.setdefault("schemas", {})
    requests = [spec.request_model for spec in JOB_TYPES]
    _add_models(schemas, [*TEMPLATE_DATA.values(), *requests, *FORM_MODELS.values()])
    schemas["Refusal"] = REFUSAL
    _data_by_template(schemas, "RenderRequest")
    _data_by_template(schemas, "CheckedRenderParams")
    schemas["FollowUp"] = _follow_up_by_type()
    _limits(schemas, settings)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _responses(path, method, operation)
    return document


def _add_models(schemas: Schema, models: list[type[BaseModel]]) -> None:
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    for name, schema in top.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def _data_by_template(schemas: Schema, name: str) -> None:
    """A render request as one variant per template, each with its own `data` model."""
    base = schemas[name]
    variants = []
    for template, model in TEMPLATE_DATA.items():
        variant = copy.deepcopy(base)
        variant["title"] = f"{base.get('title', name)} ({template})"
        variant.pop("description", None)
        variant["properties"]["template"] = {"type": "string", "const": template}
        variant["properties"]["data"] = {"$ref": REF.format(model=model.__name__)}
        if model.model_json_schema().get("required"):  # `{}` would not do
            variant["required"] = [*variant.get("required", []), "data"]
        variants.append(variant)
    schemas[name] = {k: base[k] for k in ("title", "description") if k in base}
    schemas[name]["oneOf"] = variants


def _follow_up_by_type() -> Schema:
    """`then`: a job of a type without an upload's file, its params as that type's."""
    variants = [
        {
            "title": f"FollowUp ({spec.name})",
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "params"],
            "properties": {
                "type": {"type": "string", "const": spec.name},
                "params": {"$ref": REF.format(model=spec.request_model.__name__)},
                "then": {"anyOf": [{"$ref": REF.format(model="FollowUp")}, {"type": "null"}]},
            },
        }
        for spec in JOB_TYPES
    ]
    return {
        "title": "FollowUp",
        "description": "the job to run next, with this job's outputs as its inputs",
        "oneOf": variants,
    }


def _limits(schemas: Schema, settings: Settings) -> None:
    sides = {"width", "height"}
    for name in ("ResizeParams", "ResizeForm", "Size"):
        for field, prop in schemas.get(name, {}).get("properties", {}).items():
            if field in sides:
                _set(prop, "integer", maximum=settings.max_output_side)
    for name in ("CheckedMailParams", "MailRequest"):
        props = schemas.get(name, {}).get("properties", {})
        for field in ("to", "cc", "bcc"):
            if field in props:
                props[field]["maxItems"] = settings.max_recipients
        if "attachments" in props:
            props["attachments"]["maxItems"] = settings.max_attachments


def _set(prop: Schema, json_type: str, **keywords: int) -> None:
    """Add `keywords` to the `json_type` branch of a property (`int | None` is an anyOf)."""
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == json_type:
            branch.update(keywords)


def _responses(path: str, method: str, operation: Schema) -> None:
    responses: Schema = operation.setdefault("responses", {})
    added: Schema = {}
    if path in _OPEN_PATHS:
        added["400"] = _GUARDED["400"]
    else:
        operation["security"] = [{BEARER_SCHEME: []}]
        added.update(_GUARDED)
    if path in _SUBMIT_PATHS and method == "post":
        added.update(_SUBMISSION)
        accepted = responses.get("202", {})
        accepted["headers"] = {
            "Location": _header("the job's status URL", required=True),
            "Idempotent-Replayed": _header("`true` when an earlier submission answers"),
            "traceparent": _TRACE_ANSWER,
        }
        operation.setdefault("parameters", []).append(_TRACE_PARAMETER)
    elif path.startswith("/jobs/{job_id}"):
        added.update(_READ)
        if method == "delete":
            added.update(_DELETE)
        elif path != "/jobs/{job_id}":
            added.update(_DOWNLOAD)
            ok = responses.get("200", {}).setdefault("content", {})
            ok.update({"image/*": _BINARY, "application/pdf": _BINARY})
    for status, answer in added.items():
        known = responses.get(status)
        if known is None or "content" not in known:
            description = known.get("description") if known else None
            responses[status] = {**answer, "description": description or answer["description"]}
        elif "headers" in answer:
            known.setdefault("headers", answer["headers"])
