"""Spans (shared/spans.py): off without OTEL_EXPORTER_OTLP_ENDPOINT (the SDK never
imported), and with it, in the job's trace under the span its message names."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shared import tracecontext
from shared.config import Settings
from shared.events import EventSource
from shared.messages import FollowUp, Job
from shared.spans import NO_SPAN, NO_SPANS, LiveSpans, current_span_id, open_spans, parent_of
from shared.topology import Names
from shared.worker.perform import settle_in_span
from shared.worker.settle import Settler
from tests.support.stub_channel import StubChannel

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER = "00f067aa0ba902b7"
HEADERS = {"traceparent": f"00-{TRACE}-{SENDER}-01"}

NO_SDK = """
import sys
from shared.config import Settings
from shared.messages import Job
from shared.spans import NO_SPANS, open_spans
import services.gateway.app, shared.worker.runner

spans = open_spans(Settings.from_env(), "resizer")
assert spans is NO_SPANS
job = Job(type="resize")
spans.waited(job, {})
with spans.job("handler", job, {}) as span:
    span.set("outcome", "succeeded")
spans.close()
sdk = ("opentelemetry.sdk", "opentelemetry.exporter")
print(sorted(m for m in sys.modules if m.startswith(sdk)))
"""


def test_without_the_endpoint_the_sdk_is_never_imported() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    ran = subprocess.run(
        [sys.executable, "-c", NO_SDK], env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_the_endpoint_turns_spans_on_named_after_the_service_or_otel_service_name() -> None:
    assert open_spans(Settings(), "resizer") is NO_SPANS
    on = Settings(otel_exporter_otlp_endpoint="http://127.0.0.1:9")
    for named, expected in (("", "resizer"), ("photos", "photos")):
        spans = open_spans(replace(on, otel_service_name=named), "resizer")
        assert isinstance(spans, LiveSpans)
        assert spans.provider.resource.attributes["service.name"] == expected
        spans.provider.shutdown()


def test_no_span_does_nothing() -> None:
    with NO_SPANS.job("handler", Job(type="resize"), HEADERS) as span:
        assert span is NO_SPAN
        assert current_span_id() is None


def test_a_jobs_parent_is_the_span_its_message_names_in_its_trace() -> None:
    job = Job(type="resize", trace_id=TRACE)
    assert parent_of(job, HEADERS) == tracecontext.TraceParent(TRACE, SENDER)
    # No header, or one of another trace: the job's trace, under a span derived from its id.
    other = {"traceparent": f"00-{'1' * 32}-{SENDER}-01"}
    for headers in ({}, other, {"traceparent": "garbage"}):
        derived = parent_of(job, headers)
        assert derived.trace_id == TRACE and derived.parent_id != SENDER
        assert derived == parent_of(job, {})
    untraced = Job(type="resize")
    assert parent_of(untraced, {}).trace_id == tracecontext.trace_id_of_job(untraced.id)


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def test_a_follow_up_names_the_settle_span_that_published_it(
    exported: InMemorySpanExporter,
) -> None:
    spans = LiveSpans("resizer", exported)
    channel = StubChannel()
    channel.consume("q", lambda d: None)
    job = Job(type="resize", then=FollowUp(type="mail"), trace_id=TRACE, attempt=2)
    delivery = channel.deliver(job, headers=HEADERS)
    settler = Settler(channel, Names("ns"), EventSource("resizer", "h:1"), Settings())
    settle = partial(settler.succeed, job, delivery, ["outputs/a.png"], time.monotonic())

    assert settle_in_span(spans, job, delivery.headers, settle) == "succeeded"
    spans.close()

    (settled,) = exported.get_finished_spans()
    assert settled.name == "settle"
    assert settled.parent is not None and f"{settled.parent.span_id:016x}" == SENDER
    assert f"{settled.context.trace_id:032x}" == TRACE
    assert dict(settled.attributes or {}) == {
        "job.id": job.id,
        "job.type": "resize",
        "job.attempt": 2,
        "outcome": "succeeded",
    }
    follow_up = tracecontext.parse(channel.published[0].headers["traceparent"])  # type: ignore[index]
    assert follow_up == tracecontext.TraceParent(TRACE, f"{settled.context.span_id:016x}")
    assert current_span_id() is None  # only inside the span


def test_a_handler_that_raises_and_a_settling_other_than_success_are_errors(
    exported: InMemorySpanExporter,
) -> None:
    spans = LiveSpans("resizer", exported)
    job = Job(type="resize", trace_id=TRACE)
    with pytest.raises(ValueError), spans.job("handler", job, HEADERS):
        raise ValueError("bad pixels")
    settle_in_span(spans, job, HEADERS, lambda: "failed")
    spans.close()

    handled, settled = exported.get_finished_spans()
    assert handled.status.status_code is StatusCode.ERROR
    assert handled.status.description == "ValueError: bad pixels"
    assert handled.attributes is not None and handled.attributes["outcome"] == "raised"
    assert settled.status.status_code is StatusCode.ERROR
    assert settled.attributes is not None and settled.attributes["outcome"] == "failed"


def test_queue_wait_runs_from_the_jobs_submission_to_its_taking(
    exported: InMemorySpanExporter,
) -> None:
    spans = LiveSpans("resizer", exported)
    job = Job(type="resize", trace_id=TRACE)
    spans.waited(job, HEADERS)
    spans.close()
    (waited,) = exported.get_finished_spans()
    assert waited.name == "queue wait"
    assert waited.start_time == int(job.submitted_at.timestamp() * 1_000_000_000)
    assert waited.end_time is not None and waited.start_time <= waited.end_time <= time.time_ns()


def test_a_callers_trace_not_sampled_stays_not_sampled(exported: InMemorySpanExporter) -> None:
    spans = LiveSpans("gateway", exported)
    span = spans.request("accept", f"00-{TRACE}-{SENDER}-00", "resize")
    span.end()
    sampled = spans.request("accept", f"00-{TRACE}-{SENDER}-01", "resize")
    sampled.end()
    spans.close()
    assert span.trace is not None and span.trace.trace_id == TRACE
    assert not span.trace.sampled and span.trace.header().endswith("-00")
    assert sampled.trace is not None and sampled.trace.sampled
    (exported_span,) = exported.get_finished_spans()
    assert exported_span.parent is not None and f"{exported_span.parent.span_id:016x}" == SENDER
