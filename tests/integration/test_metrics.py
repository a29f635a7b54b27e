"""Metrics against the real broker: a resize job through the in-process gateway (its real
publisher), run by a real resizer with METRICS_PORT set, then both scraped over HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.app import create_app
from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.audit import make_event, new_job_id, publish_event, start_audit
from tests.support.broker import TestBroker
from tests.support.gateway import closed_url
from tests.support.keys import admin_key, bearer
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def gateway(settings: Settings, broker: TestBroker) -> Iterator[TestClient]:
    """The gateway app in this process with its real publisher on the test's namespace."""
    app = create_app(replace(settings, audit_url=closed_url()))
    headers = bearer(admin_key(settings.state_dir))
    with TestClient(app, base_url="http://localhost", headers=headers) as client:
        deadline = time.monotonic() + 20
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the gateway's publisher did not connect"
            time.sleep(0.05)
        yield client


def resizer_with_metrics(spawn: SpawnFn) -> tuple[ServiceProcess, str]:
    port = free_port()
    worker = spawn("services.resizer", METRICS_HOST="127.0.0.1", METRICS_PORT=str(port))
    worker.wait_logged("consuming")
    return worker, f"http://127.0.0.1:{port}/metrics"


def scrape(url: str, name: str, until: float, **labels: str) -> str:
    """The exposition at `url` once `name{labels}` reads `until` (a settled job's count goes
    up just after its events)."""
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(url, timeout=5).text
        if sample(text, name, **labels) == until or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_a_resize_job_is_counted_by_the_gateway_and_the_worker_that_ran_it(
    gateway: TestClient, spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    _worker, metrics_url = resizer_with_metrics(spawn)
    response = gateway.post(
        "/jobs/resize", files={"file": ("p.png", png(), "image/png")}, data={"width": "16"}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    events.wait_for(job_id, "job.succeeded")

    worker = scrape(metrics_url, "jobsuite_jobs_total", 1.0, type="resize", outcome="succeeded")
    assert sample(worker, "jobsuite_jobs_total", type="resize", outcome="succeeded") == 1.0
    assert sample(worker, "jobsuite_jobs_total", type="resize", outcome="failed") == 0.0
    assert sample(worker, "jobsuite_job_duration_seconds_count", type="resize") == 1.0
    assert sample(worker, "jobsuite_jobs_in_progress", type="resize") == 0.0
    # job.started and job.succeeded, each confirmed
    confirms = sample(worker, "jobsuite_publish_confirm_seconds_count", service="resizer")
    assert confirms is not None and confirms >= 2
    assert job_id not in worker

    text = gateway.get("/metrics", headers={"authorization": ""}).text
    assert sample(text, "jobsuite_jobs_submitted_total", type="resize") == 1.0
    assert sample(text, "jobsuite_jobs_submitted_total", type="render") == 0.0
    posted = sample(
        text, "jobsuite_http_requests_total", route="/jobs/resize", method="POST", status="202"
    )
    assert posted == 1.0
    confirmed = sample(text, "jobsuite_publish_confirm_seconds_count", service="gateway")
    assert confirmed is not None and confirmed >= 1
    assert job_id not in text


def test_a_job_that_fails_for_good_is_counted_failed(spawn: SpawnFn, broker: TestBroker) -> None:
    events = broker.events()
    _worker, metrics_url = resizer_with_metrics(spawn)
    job = Job(type="resize", params={"width": 16}, inputs=["inputs/nobody/input.png"])
    broker.publish_job(job)
    events.wait_for(job.id, "job.failed")

    text = scrape(metrics_url, "jobsuite_jobs_total", 1.0, type="resize", outcome="failed")
    assert sample(text, "jobsuite_jobs_total", type="resize", outcome="failed") == 1.0
    assert sample(text, "jobsuite_jobs_total", type="resize", outcome="succeeded") == 0.0
    assert sample(text, "jobsuite_jobs_total", type="resize", outcome="dead") == 0.0
    assert sample(text, "jobsuite_job_duration_seconds_count", type="resize") == 1.0


def test_a_worker_whose_metrics_port_is_taken_exits_2_with_one_line(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    _first, url = resizer_with_metrics(spawn)
    port = url.split(":")[2].split("/")[0]
    second = spawn("services.resizer", METRICS_HOST="127.0.0.1", METRICS_PORT=port)
    assert second.wait(timeout=20) == 2
    tail = second.tail()
    assert f"jobsuite: configuration error: METRICS_PORT {port} " in tail
    assert "Traceback" not in tail


def test_the_audit_counts_the_events_it_records_and_its_lag_over_http(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    job_ids = [new_job_id() for _ in range(3)]
    for job_id in job_ids:
        publish_event(broker, make_event("job.started", job_id))
    url = f"{audit.url}/metrics"  # no key: open like /healthz
    text = scrape(url, "jobsuite_audit_events_total", 3.0, event="job.started")
    assert sample(text, "jobsuite_audit_events_total", event="job.started") == 3.0
    assert sample(text, "jobsuite_audit_events_total", event="job.dead") == 0.0
    assert sample(text, "jobsuite_audit_lag_events") == 0.0  # nothing left waiting
    assert not any(job_id in text for job_id in job_ids)
    assert httpx.get(f"{audit.url}/jobs/{job_ids[0]}", timeout=5).status_code == 401
