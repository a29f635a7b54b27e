"""The trace of a request (W3C Trace Context): the caller's `traceparent` continued, or a new
trace; one per request, the same for its job, its events and its answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared import tracecontext
from shared.tracecontext import TraceParent


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


TraceDep = Annotated[TraceParent, Depends(request_trace)]
