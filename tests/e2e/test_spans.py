"""Spans over OTLP/HTTP (shared/spans.py), across real processes: with
OTEL_EXPORTER_OTLP_ENDPOINT set, a resize -> render pipeline under a caller's traceparent
reaches a test receiver as one trace: the gateway's `accept` under the caller's span, each
job's `queue wait`, `handler` and `settle` under the span that published it."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable

from PIL import Image

from shared import tracecontext
from shared.config import Settings
from shared.ids import follow_up_id
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import start_gateway
from tests.support.otlp import ReceivedSpan, otlp_receiver

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER = f"00-{TRACE}-{CALLER_SPAN}-01"
THEN = '{"type": "render", "params": {"template": "document"}}'
JOB_SPANS = {"queue wait", "handler", "settle"}


def test_a_pipeline_exports_one_tree_of_spans_in_the_callers_trace(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    with otlp_receiver() as receiver:
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=test-key",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        resizer = spawn("services.resizer", **otel)
        # The renderer and the gateway export only when they stop: their spans prove the
        # flush at SIGTERM.
        batched = {**otel, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
        renderer = spawn("services.renderer", **batched, OTEL_SERVICE_NAME="jobsuite-renderer")
        gateway = start_gateway(spawn, settings, **batched)
        for worker in (resizer, renderer):
            worker.wait_logged("consuming")
        photo = io.BytesIO()
        Image.radial_gradient("L").resize((320, 240)).convert("RGB").save(photo, "JPEG")

        with gateway.client() as http:
            answer = http.post(
                "/jobs/resize",
                headers={"traceparent": CALLER},
                data={"width": "80", "then": THEN},
                files={"file": ("photo.jpg", photo.getvalue(), "image/jpeg")},
            )
        assert answer.status_code == 202, answer.text
        resize_id = answer.json()["id"]
        render_id = follow_up_id(resize_id)
        events.wait_for(render_id, "job.succeeded", timeout=60)

        def of(job_id: str) -> Callable[[list[ReceivedSpan]], bool]:
            return lambda spans: (
                {s.name for s in spans if s.attributes.get("job.id") == job_id} >= JOB_SPANS
            )

        receiver.wait_until(of(resize_id), 30, "the resize job's spans")
        # Batched for 10 minutes...
        assert not of(render_id)(receiver.received())
        assert not any(s.name == "accept" for s in receiver.received())
        renderer.signal(signal.SIGTERM)
        assert renderer.wait(30) == 0, renderer.tail()
        # uvicorn shuts down (the lifespan's end: the flush), then re-raises the signal.
        gateway.process.signal(signal.SIGTERM)
        assert gateway.process.wait(30) in (0, -signal.SIGTERM), gateway.process.tail()
        spans = receiver.wait_until(
            lambda spans: of(render_id)(spans) and any(s.name == "accept" for s in spans),
            10,
            "the render job's spans and accept, flushed at exit",
        )

    assert {s.trace_id for s in spans} == {TRACE}
    (accept,) = [s for s in spans if s.name == "accept"]
    assert accept.service == "gateway"
    assert accept.parent_id == CALLER_SPAN
    assert accept.attributes == {
        "job.id": resize_id,
        "job.type": "resize",
        "job.attempt": 1,
        "outcome": "accepted",
        "http.status_code": 202,
    }
    assert not accept.error
    # The answer names the accept span: what the caller learns is the job's parent.
    answered = tracecontext.parse(answer.headers["traceparent"])
    assert answered is not None and answered.parent_id == accept.span_id

    resize = _spans_of(spans, resize_id, "resizer", "resize", parent=accept.span_id)
    render = _spans_of(
        spans, render_id, "jobsuite-renderer", "render", parent=resize["settle"].span_id
    )
    for job in (resize, render):
        waited, handled, settled = job["queue wait"], job["handler"], job["settle"]
        assert waited.start_ns < waited.end_ns <= handled.start_ns
        assert handled.end_ns <= settled.start_ns < settled.end_ns
        assert settled.attributes["outcome"] == "succeeded"
        assert not any(span.error for span in job.values())
    assert accept.start_ns <= resize["queue wait"].start_ns
    assert receiver.headers and all(
        h.get("x-collector-key") == "test-key" for h in receiver.headers
    )


def _spans_of(
    spans: list[ReceivedSpan], job_id: str, service: str, job_type: str, *, parent: str
) -> dict[str, ReceivedSpan]:
    """The job's one span of each name, each under `parent`, sent by `service`."""
    mine = [s for s in spans if s.attributes.get("job.id") == job_id and s.name != "accept"]
    by_name = {s.name: s for s in mine}
    assert len(mine) == len(by_name) == 3, mine
    for span in mine:
        assert span.service == service, span
        assert span.parent_id == parent, span
        assert span.attributes["job.type"] == job_type
        assert span.attributes["job.attempt"] == 1
    return by_name
