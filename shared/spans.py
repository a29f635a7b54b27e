"""Spans, exported with OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The gateway's `accept` span covers a submission from its arrival to its answer; each worker
records, per delivery, `queue wait` (from the job's `submitted_at` to the worker taking it),
`handler` and `settle` (confirms, then the ack or the reject). All are in the job's trace
(`Job.trace_id`), children of the span its message's `traceparent` header names: the
gateway's `accept`, or the `settle` that published a follow-up or a retry (messages
published inside a span carry its id: `current_span_id`).

Without the endpoint `open_spans` returns `NO_SPANS`, whose spans do nothing, and the SDK is
never imported. With it: a BatchSpanProcessor and the OTLP/HTTP (protobuf) exporter, which
read their other OTEL_* variables themselves (OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*, …);
`close()` flushes what is left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shared import tracecontext
from shared.messages import Job
from shared.tracecontext import TraceParent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import Tracer

    from shared.config import Settings

_current: ContextVar[str | None] = ContextVar("jobsuite_span_id", default=None)


def current_span_id() -> str | None:
    """The id of the live span this code runs in (None: no span, or spans are off)."""
    return _current.get()


class Span:
    """A span that does nothing (spans off); `LiveSpan` records one."""

    trace: TraceParent | None = None  # the span's trace and own id (LiveSpan only)

    def set(self, key: str, value: str | int) -> None:
        pass

    def fail(self, message: str) -> None:
        pass

    def end(self) -> None:
        pass

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pass


NO_SPAN = Span()


class Spans:
    """Spans off: every call returns at once."""

    enabled = False

    def job(self, name: str, job: Job, headers: Mapping[str, Any]) -> Span:
        """A span about a job, starting now, under its message's parent."""
        return NO_SPAN

    def waited(self, job: Job, headers: Mapping[str, Any]) -> None:
        """`queue wait`: from the job's `submitted_at` until now (the worker took it)."""

    def request(self, name: str, traceparent: str | None, job_type: str) -> Span:
        """A submission's span, starting now, continuing the caller's trace if it sent one."""
        return NO_SPAN

    def close(self) -> None:
        """Flush the spans not yet exported, then stop exporting."""


NO_SPANS = Spans()


def open_spans(settings: Settings, service: str) -> Spans:
    """`NO_SPANS` unless OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    if not settings.otel_exporter_otlp_endpoint:
        return NO_SPANS
    return LiveSpans(settings.otel_service_name or service)


class LiveSpan(Span):
    def __init__(self, span: OtelSpan) -> None:
        self._span = span
        context = span.get_span_context()
        trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
        self.trace = TraceParent(trace_id, span_id, context.trace_flags.sampled)
        self._token: Any = None

    def set(self, key: str, value: str | int) -> None:
        self._span.set_attribute(key, value)

    def fail(self, message: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_status(Status(StatusCode.ERROR, message))

    def end(self) -> None:
        self._span.end()

    def __enter__(self) -> Span:
        assert self.trace is not None
        self._token = _current.set(self.trace.parent_id)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _current.reset(self._token)
        if error is not None:
            self.set("outcome", "raised")
            self.fail(f"{type(error).__name__}: {error}")
        self.end()


class LiveSpans(Spans):
    enabled = True

    def __init__(self, service_name: str, exporter: SpanExporter | None = None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The endpoint, headers and batching from the OTEL_* variables (the SDK's reading).
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: service_name})
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        self.tracer: Tracer = self.provider.get_tracer("jobsuite")

    def job(self, name: str, job: Job, headers: Mapping[str, Any]) -> Span:
        return LiveSpan(self._start(name, job, headers))

    def waited(self, job: Job, headers: Mapping[str, Any]) -> None:
        self._start("queue wait", job, headers, start=_ns(job.submitted_at)).end()

    def request(self, name: str, traceparent: str | None, job_type: str) -> Span:
        parent = tracecontext.parse(traceparent)
        attributes: dict[str, str | int] = {"job.type": job_type, "job.attempt": 1}
        span = self.tracer.start_span(name, _context(parent), attributes=attributes)
        return LiveSpan(span)

    def close(self) -> None:
        self.provider.shutdown()  # flushes the batch first

    def _start(
        self, name: str, job: Job, headers: Mapping[str, Any], start: int | None = None
    ) -> OtelSpan:
        attributes: dict[str, str | int] = {
            "job.id": job.id,
            "job.type": job.type,
            "job.attempt": job.attempt,
        }
        context = _context(parent_of(job, headers))
        return self.tracer.start_span(name, context, attributes=attributes, start_time=start)


def parent_of(job: Job, headers: Mapping[str, Any]) -> TraceParent:
    """The span a job's spans hang under: the one its message's `traceparent` names, in the
    job's trace; else (a job put on a queue by hand) one derived from its id, in its trace."""
    trace_id = tracecontext.trace_id_for(job.id, job.trace_id, headers)
    header = headers.get(tracecontext.HEADER)
    if isinstance(header, bytes):
        header = header.decode("ascii", "replace")
    parent = tracecontext.parse(header) if isinstance(header, str) else None
    if parent is not None and parent.trace_id == trace_id:
        return parent
    return TraceParent(trace_id, hashlib.sha256(job.id.encode()).hexdigest()[32:48])


def _context(parent: TraceParent | None) -> Any:
    """An OpenTelemetry context whose (remote) parent is `parent`; None: a new trace."""
    if parent is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    flags = TraceFlags(TraceFlags.SAMPLED if parent.sampled else TraceFlags.DEFAULT)
    remote = SpanContext(int(parent.trace_id, 16), int(parent.parent_id, 16), True, flags)
    return trace.set_span_in_context(NonRecordingSpan(remote))


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
