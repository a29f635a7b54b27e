"""One trace per pipeline (W3C Trace Context), across real processes: the caller's
`traceparent` is continued by the gateway, answered, carried by the resize job into its
render and mail follow-ups, and found in every event and in every worker's log lines about
them, and in the metrics' counts as their exemplar (OpenMetrics); a refused submission's
`job.rejected` carries the caller's trace too."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
from PIL import Image

from shared import tracecontext
from shared.config import Settings
from shared.ids import follow_up_id
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import start_gateway
from tests.support.mailsink import start_mailsink
from tests.support.ports import free_port

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE}-b7ad6b7169203331-01"
THEN = (
    '{"type": "render", "params": {"template": "document"}, "then": {"type": "mail",'
    ' "params": {"to": ["ann@example.org"], "subject": "Traced", "text": "attached"}}}'
)


def test_a_pipeline_is_one_trace_in_every_answer_event_and_log_line(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    sink = start_mailsink(spawn, tmp_path / "mail")
    ports = {job_type: free_port() for job_type in ("resize", "render", "mail")}
    metrics = {"METRICS_HOST": "127.0.0.1"}
    workers = {
        "resize": spawn("services.resizer", **metrics, METRICS_PORT=str(ports["resize"])),
        "render": spawn("services.renderer", **metrics, METRICS_PORT=str(ports["render"])),
        "mail": spawn("services.mailer", **sink.env(), **metrics, METRICS_PORT=str(ports["mail"])),
    }
    gateway = start_gateway(spawn, settings)
    for worker in workers.values():
        worker.wait_logged("consuming")
    photo = io.BytesIO()
    Image.radial_gradient("L").resize((640, 480)).convert("RGB").save(photo, "JPEG")

    with gateway.client() as http:
        answer = http.post(
            "/jobs/resize",
            headers={"traceparent": CALLER},
            data={"width": "160", "then": THEN},
            files={"file": ("photo.jpg", photo.getvalue(), "image/jpeg")},
        )
        refused = http.post("/jobs/resize", headers={"traceparent": CALLER}, data={})
    assert answer.status_code == 202, answer.text
    answered = tracecontext.parse(answer.headers["traceparent"])
    assert answered is not None and answered.trace_id == TRACE
    assert answered.parent_id != "b7ad6b7169203331"  # the gateway's own span

    resize_id = answer.json()["id"]
    render_id = follow_up_id(resize_id)
    mail_id = follow_up_id(render_id)
    events.wait_for(mail_id, "job.succeeded", timeout=90)
    sink.wait_for_messages(1)
    pipeline = [e for job in (resize_id, render_id, mail_id) for e in events.of(job)]
    assert {e["event"] for e in pipeline} >= {"job.submitted", "job.started", "job.succeeded"}
    assert {e["trace_id"] for e in pipeline} == {TRACE}

    for job_id, worker in zip((resize_id, render_id, mail_id), workers.values(), strict=True):
        about_it = [line for line in worker.log_lines() if line.get("job_id") == job_id]
        assert about_it, worker.tail()
        assert {line.get("trace_id") for line in about_it} == {TRACE}

    # Each count's exemplar is the trace of what it counted last: a graph leads to the trace.
    exemplar = f'# {{trace_id="{TRACE}"}}'
    with gateway.client() as http:
        scraped = http.get("/metrics", headers={"Accept": OPENMETRICS}).text
    assert exemplar in _series(scraped, "jobsuite_jobs_submitted_total", type="resize")
    for job_type, port in ports.items():
        scraped = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept": OPENMETRICS}).text
        series = _series(scraped, "jobsuite_jobs_total", type=job_type, outcome="succeeded")
        assert exemplar in series, scraped

    # A refusal answers with the caller's trace and tells the audit under it.
    assert refused.status_code == 422
    assert tracecontext.parse(refused.headers["traceparent"]).trace_id == TRACE  # type: ignore[union-attr]
    broker.wait_until(
        lambda: any(
            e["event"] == "job.rejected" and e.get("trace_id") == TRACE for e in events.poll()
        ),
        30,
        "job.rejected with the caller's trace",
    )
    # No traceparent: the gateway starts a trace, says which, and the job runs under it.
    with gateway.client() as http:
        untraced = http.post(
            "/jobs/resize",
            data={"width": "80"},
            files={"file": ("photo.jpg", photo.getvalue(), "image/jpeg")},
        )
    started = tracecontext.parse(untraced.headers["traceparent"])
    assert started is not None and started.trace_id != TRACE
    done = events.wait_for(untraced.json()["id"], "job.succeeded", timeout=60)
    assert done[0]["trace_id"] == started.trace_id


OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _series(scraped: str, name: str, **labels: str) -> str:
    """The exposition's line of one series (with its exemplar, if any)."""
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    lines = [
        line
        for line in scraped.splitlines()
        if (found := re.match(rf"{name}\{{([^}}]*)\}}", line))
        and set(found.group(1).split(",")) == wanted
    ]
    assert len(lines) == 1, scraped
    return lines[0]
