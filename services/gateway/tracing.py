"""The trace of a request (W3C Trace Context): the caller's `traceparent` continued, or a new
trace; one per request, the same for its job, its events and its answer.

With spans on (OTEL_EXPORTER_OTLP_ENDPOINT, shared/spans.py), `AcceptSpan` records each
submission as an `accept` span, from its arrival to its answer, and the request's trace is
that span's: the answer's `traceparent` and the job message's name it as the parent."""

from __future__ import annotations

import re

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracecontext
from shared.jobtypes import JOB_TYPE_NAMES
from shared.spans import Spans
from shared.tracecontext import TraceParent

_SUBMIT_PATH = re.compile(rf"^/jobs/({'|'.join(JOB_TYPE_NAMES)})$")
_JOB_LOCATION = re.compile(r"^/jobs/([0-9a-f-]{36})$")


def request_trace(request: Request) -> TraceParent:
    trace: TraceParent | None = getattr(request.state, "trace", None)
    if trace is None:
        trace = tracecontext.start(request.headers.get(tracecontext.HEADER))
        request.state.trace = trace
    return trace


def answer_header(request: Request) -> dict[str, str]:
    """The `traceparent` an answer about a submission carries: the caller's trace, from the
    gateway's span, so a caller without one learns the trace its jobs belong to."""
    return {tracecontext.HEADER: request_trace(request).header()}


class AcceptSpan:
    """An `accept` span around each submission (POST /jobs/<type>): installed only when
    spans are on. Its attributes: job.type, job.attempt, job.id (from the 202's Location),
    outcome (`accepted`, else `refused`) and http.status_code; a 5xx is an error."""

    def __init__(self, app: ASGIApp, spans: Spans) -> None:
        self.app = app
        self.spans = spans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        submission = _SUBMIT_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if submission is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        caller = Headers(scope=scope).get(tracecontext.HEADER)
        span = self.spans.request("accept", caller, submission.group(1))
        if span.trace is not None:  # what request_trace finds: the job's parent is this span
            scope.setdefault("state", {})["trace"] = span.trace
        status = 500

        async def answering(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                location = Headers(raw=message.get("headers", [])).get("location", "")
                if (job := _JOB_LOCATION.match(location)) is not None:
                    span.set("job.id", job.group(1))
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            span.set("http.status_code", status)
            span.set("outcome", "accepted" if status == 202 else "refused")
            if status >= 500:
                span.fail(f"answered {status}")
            span.end()
