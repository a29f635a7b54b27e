"""Refused requests: one clear answer each, and a `job.rejected` event for refused submissions.

422 answers keep FastAPI's shape (`{"detail": [{"loc", "msg", "type"}]}`, the field named in
`loc`) but never echo the input back; other refusals are `{"detail": "…"}`. The event carries
the reason only, never the payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from services.gateway.tracing import answer_header, request_trace
from shared.errors import JobsuiteError
from shared.jobtypes import JOB_TYPE_NAMES

OnRejected = Callable[[str, str, str, str], None]
"""(job type, kind, message, trace id) of a refused submission."""

_SUBMIT_PATH = re.compile(rf"^/jobs/({'|'.join(JOB_TYPE_NAMES)})$")
_KINDS = {
    400: "bad_request",
    409: "idempotency_conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


class Rejected(JobsuiteError):
    """A request the gateway refuses, with its status code and a reason for people."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.field = field
        self.headers = headers


def validation_error(error: ValidationError, *prefix: str | int) -> RequestValidationError:
    """A pydantic error raised by our own parsing, answered like FastAPI's own 422."""
    return RequestValidationError(
        [
            {"loc": (*prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
    )


def field_error(field: Sequence[str | int], message: str, kind: str = "invalid") -> Rejected:
    """A 422 about one field, e.g. `field_error(("sizes", 0), "…")`."""
    return Rejected(422, kind, message, field=".".join(str(p) for p in field))


def _describe(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg")))
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _message(error: Any) -> str:
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid" and (why := error.get("ctx", {}).get("error")):
        return f"{message}: {why}"  # FastAPI's "JSON decode error" says nothing of what
    return message


def install(app: FastAPI, on_rejected: OnRejected) -> None:
    def rejected_submission(request: Request, kind: str, message: str) -> dict[str, str]:
        """Tell the audit of a refused submission; the answer's trace header."""
        match = _SUBMIT_PATH.match(request.url.path)
        if request.method != "POST" or not match:
            return {}
        on_rejected(match.group(1), kind, message, request_trace(request).trace_id)
        return answer_header(request)

    @app.exception_handler(Rejected)
    async def on_rejected_error(request: Request, exc: Rejected) -> JSONResponse:
        detail: Any = exc.message
        reason = exc.message
        if exc.status == 422 and exc.field is not None:
            # An empty field (the whole body) is loc ["body"], never ["body", ""].
            parts = [p for p in exc.field.split(".") if p]
            loc = ["body", *(int(p) if p.isdigit() else p for p in parts)]
            detail = [{"loc": loc, "msg": exc.message, "type": exc.kind}]
            reason = _describe(detail)
        traced = rejected_submission(request, exc.kind, reason)
        headers = {**(exc.headers or {}), **traced}
        return JSONResponse({"detail": detail}, exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "msg": _message(e),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        traced = rejected_submission(request, "invalid", _describe(errors))
        return JSONResponse({"detail": errors}, 422, headers=traced)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        traced: dict[str, str] = {}
        if 400 <= exc.status_code < 500:
            kind = getattr(exc, "kind", None) or _KINDS.get(exc.status_code, "refused")
            detail = exc.detail
            traced = rejected_submission(
                request, kind, _describe(detail) if isinstance(detail, list) else str(detail)
            )
        return JSONResponse(
            {"detail": exc.detail}, exc.status_code, headers={**(exc.headers or {}), **traced}
        )
