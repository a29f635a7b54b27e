"""Prometheus metrics in-process: what each registry holds, labels by route template (never a
raw path), /metrics open and out of the OpenAPI document, counts by job outcome, a taken
METRICS_PORT as one configuration line."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from services.audit.api import create_app as create_audit_app
from services.audit.metrics import AuditMetrics, LagProbe
from services.audit.queries import Queries
from services.audit.recorder import Recorder
from services.gateway.app import create_app
from shared.config import Settings
from shared.errors import BrokerUnavailable, ConfigError
from shared.events import EventSource
from shared.http_metrics import OTHER, method_label
from shared.jobtypes import JOB_TYPE_NAMES
from shared.messages import Job
from shared.metrics import OUTCOMES, WorkerMetrics, exposition, serve_metrics
from shared.state import API_KEYS_FILE
from shared.state.keys import SqliteApiKeyStore
from shared.topology import Names
from shared.worker import Worker, run_worker
from shared.worker.settle import Settler
from tests.support.keys import bearer, make_key
from tests.support.stub_channel import StubChannel
from tests.unit.test_gateway_in_doubt import ScriptedPublisher
from tests.unit.test_worker_consumer import Rig

RENDER = {"template": "document", "data": {"blocks": ["x"]}}
IDS = ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def gateway_settings(tmp_path: Path, **changes: object) -> Settings:
    base = replace(
        Settings(),
        blob_dir=tmp_path / "blobs",
        state_dir=tmp_path / "state",
        audit_url="http://127.0.0.1:9",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- the gateway --------------------------------------------------------------------------


def test_gateway_metrics_are_open_out_of_the_schema_and_keep_the_security_headers(
    tmp_path: Path,
) -> None:
    settings = gateway_settings(tmp_path)
    app = create_app(settings, publisher=ScriptedPublisher())
    with TestClient(app, base_url="http://localhost") as http:  # no key at all
        response = http.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "/metrics" not in http.get("/openapi.json").json()["paths"]
        # The Host allow-list holds for it as for every route.
        foreign = http.get("/metrics", headers={"host": "evil.example"})
        assert foreign.status_code == 400
    text = response.text
    for job_type in JOB_TYPE_NAMES:
        assert value(text, "jobsuite_jobs_submitted_total", type=job_type) == 0.0


def test_gateway_metrics_are_not_rate_limited(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path)
    key = make_key(settings.state_dir, "slow", submissions_per_second=0.001, burst=1)
    app = create_app(settings, publisher=ScriptedPublisher())
    with TestClient(app, base_url="http://localhost", headers=bearer(key)) as http:
        assert http.post("/jobs/render", json=RENDER).status_code == 202
        assert http.post("/jobs/render", json=RENDER).status_code == 429
        for _ in range(5):
            assert http.get("/metrics").status_code == 200


def test_requests_are_labelled_by_route_template_never_the_raw_path(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path)
    key = make_key(settings.state_dir, "shop")
    app = create_app(settings, publisher=ScriptedPublisher())
    with TestClient(app, base_url="http://localhost", headers=bearer(key)) as http:
        for job_id in IDS:
            http.get(f"/jobs/{job_id}")
        http.get(f"/jobs/{IDS[0]}", headers={"authorization": "Bearer nope"})  # a 401
        http.get("/no/such/path/123")
        http.get("/no/such/path/456")
        http.get("/docs/assets/swagger-ui.css")
        http.request("BREW", "/healthz")
        text = http.get("/metrics").text
    routes = {
        labels.get("route")
        for (name, items), _v in samples(text).items()
        if name == "jobsuite_http_requests_total"
        for labels in [dict(items)]
    }
    assert "/jobs/{job_id}" in routes
    assert OTHER in routes
    assert "/docs/assets" in routes
    assert not any(job_id in text for job_id in IDS)
    assert "/no/such" not in text and "shop" not in text
    assert value(text, "jobsuite_http_requests_total", route=OTHER, method="GET", status="404")
    count = value(
        text, "jobsuite_http_request_duration_seconds_count", route="/jobs/{job_id}", method="GET"
    )
    assert count == 2.0
    # Refused before routing: labelled `other`, never with the path it asked for.
    unauthorized = value(
        text, "jobsuite_http_requests_total", route=OTHER, method="GET", status="401"
    )
    assert unauthorized == 1.0
    assert value(text, "jobsuite_http_requests_total", route="/healthz", method=OTHER, status="405")


def test_an_accepted_job_counts_once_and_refusals_and_replays_not_at_all(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path)
    key = make_key(settings.state_dir, "shop")
    app = create_app(settings, publisher=ScriptedPublisher())
    with TestClient(app, base_url="http://localhost", headers=bearer(key)) as http:
        again = {"Idempotency-Key": "k-1"}
        assert http.post("/jobs/render", json=RENDER, headers=again).status_code == 202
        replay = http.post("/jobs/render", json=RENDER, headers=again)
        assert replay.headers.get("idempotent-replayed") == "true"
        assert http.post("/jobs/render", json={"template": "nope"}).status_code == 422
        text = http.get("/metrics").text
    assert value(text, "jobsuite_jobs_submitted_total", type="render") == 1.0
    assert value(text, "jobsuite_jobs_submitted_total", type="resize") == 0.0


def test_two_gateways_in_one_process_count_apart(tmp_path: Path) -> None:
    one = create_app(
        gateway_settings(tmp_path / "a", auth_disabled=True), publisher=ScriptedPublisher()
    )
    two = create_app(
        gateway_settings(tmp_path / "b", auth_disabled=True), publisher=ScriptedPublisher()
    )
    with (
        TestClient(one, base_url="http://localhost") as a,
        TestClient(two, base_url="http://localhost") as b,
    ):
        assert a.post("/jobs/render", json=RENDER).status_code == 202
        assert value(a.get("/metrics").text, "jobsuite_jobs_submitted_total", type="render") == 1.0
        assert value(b.get("/metrics").text, "jobsuite_jobs_submitted_total", type="render") == 0.0


def test_unknown_methods_share_one_label() -> None:
    assert method_label("GET") == "GET"
    assert method_label("X" * 40) == OTHER


# --- workers ------------------------------------------------------------------------------


def test_a_worker_registry_has_every_series_at_zero_from_the_start() -> None:
    metrics = WorkerMetrics(CollectorRegistry(), "resizer", ["resize"])
    text = exposition(metrics.registry)[0].decode()
    for outcome in OUTCOMES:
        assert value(text, "jobsuite_jobs_total", type="resize", outcome=outcome) == 0.0
    assert value(text, "jobsuite_job_duration_seconds_count", type="resize") == 0.0
    assert value(text, "jobsuite_jobs_in_progress", type="resize") == 0.0
    assert value(text, "jobsuite_publish_confirm_seconds_count", service="resizer") == 0.0
    assert "render" not in text  # only the types this worker serves


def settled(metrics: WorkerMetrics, outcome: str) -> float:
    found = metrics.registry.get_sample_value(
        "jobsuite_jobs_total", {"type": "resize", "outcome": outcome}
    )
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("how", "outcome"),
    [
        ("succeed", "succeeded"),
        ("fail", "failed"),
        ("retry", "retried"),
        ("defer", "deferred"),
        ("retry_last", "dead"),
        ("refuse_delivery_limit", "dead"),
        ("refuse_over_limit", "failed"),
    ],
)
def test_each_way_of_settling_counts_its_outcome(how: str, outcome: str) -> None:
    channel = StubChannel()
    metrics = WorkerMetrics(CollectorRegistry(), "resizer", ["resize"])
    settings = Settings(namespace="ns", retry_delays_ms=(100,))
    settler = Settler(channel, Names("ns"), EventSource("tester", "h:1"), settings, metrics)
    channel.consume("q", lambda d: None)
    job = Job(type="resize", attempt=2 if how == "retry_last" else 1)
    delivery = channel.deliver(job)
    started = time.monotonic()
    if how == "succeed":
        settler.succeed(job, delivery, [], started)
    elif how == "fail":
        settler.fail(job, delivery, "bad_image", "no", started)
    elif how in ("retry", "retry_last"):
        settler.retry(job, delivery, "flaky", "later", started)
    elif how == "defer":
        settler.defer(job, delivery, "mail_in_flight", "another mailer sends it", started)
    elif how == "refuse_delivery_limit":
        settler.refuse(job, delivery, "delivery_limit", "delivered 6 times")
    else:
        settler.refuse(job, delivery, "too_many_pixels", "over MAX_IMAGE_PIXELS")
    assert {o: settled(metrics, o) for o in OUTCOMES} == {
        o: 1.0 if o == outcome else 0.0 for o in OUTCOMES
    }


def taken_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_taken_metrics_port_is_a_configuration_error() -> None:
    with taken_port() as sock:
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=f"METRICS_PORT {port} cannot be listened on"):
            serve_metrics(CollectorRegistry(), "127.0.0.1", port)


def test_a_worker_on_a_taken_metrics_port_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Worker, "install_signal_handlers", lambda self: None)  # pytest's stay
    with taken_port() as sock:
        port = sock.getsockname()[1]
        settings = Settings(
            blob_dir=tmp_path, metrics_port=port, amqp_url="amqp://u:p@127.0.0.1:1/%2F"
        )
        assert run_worker(settings, service="resizer", handlers={"resize": lambda j, b: []}) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"jobsuite: configuration error: METRICS_PORT {port} ")
    assert "Traceback" not in err[0]


def test_a_worker_serves_its_metrics_only_on_metrics_port(tmp_path: Path) -> None:
    worker = Worker(
        Settings(blob_dir=tmp_path, metrics_port=None),
        service="resizer",
        handlers={"resize": lambda j, b: []},
    )
    worker._serve_metrics()
    assert worker.metrics_server is None  # unset: no listener
    with taken_port() as sock:
        free = sock.getsockname()[1]
    worker = Worker(
        Settings(blob_dir=tmp_path, metrics_port=free),
        service="resizer",
        handlers={"resize": lambda j, b: []},
    )
    worker._serve_metrics()
    assert worker.metrics_server is not None
    try:
        text = httpx.get(f"http://127.0.0.1:{free}/metrics").text
        assert value(text, "jobsuite_jobs_total", type="resize", outcome="succeeded") == 0.0
    finally:
        worker.metrics_server.close()


# --- the audit ----------------------------------------------------------------------------


def test_audit_metrics_are_open_while_its_other_routes_need_an_admin_key(tmp_path: Path) -> None:
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit"))
    keys = SqliteApiKeyStore.open(tmp_path / "state" / API_KEYS_FILE)
    _admin, key = keys.create("admin", admin=True)
    metrics = AuditMetrics()
    metrics.recorded("job.succeeded")
    app = create_audit_app(Queries(recorder.model.path), keys=keys, metrics=metrics.registry)
    with TestClient(app, base_url="http://localhost") as http:
        assert http.get(f"/jobs/{IDS[0]}").status_code == 401
        response = http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        schema = http.get("/openapi.json", headers=bearer(key)).json()
        assert "/metrics" not in schema["paths"]
    keys.close()
    text = response.text
    assert value(text, "jobsuite_audit_events_total", event="job.succeeded") == 1.0
    assert value(text, "jobsuite_audit_events_total", event="job.dead") == 0.0
    assert value(text, "jobsuite_audit_lag_events") == 0.0
    assert (
        value(
            text, "jobsuite_http_requests_total", route="/jobs/{job_id}", method="GET", status="401"
        )
        == 1.0
    )


class _LagChannel:
    def __init__(self, depths: list[int | Exception]) -> None:
        self.depths = depths
        self.is_open = True

    def queue_depth(self, queue: str) -> tuple[int, int]:
        depth = self.depths.pop(0)
        if isinstance(depth, Exception):
            self.is_open = False
            raise depth
        return depth, 1


class _LagConnection:
    def __init__(self, channel: _LagChannel) -> None:
        self._channel = channel
        self.opened = 0

    def channel(self) -> _LagChannel:
        self.opened += 1
        self._channel.is_open = True
        return self._channel


def test_the_audit_lag_is_the_ready_count_asked_at_most_every_interval() -> None:
    now = [100.0]
    channel = _LagChannel([7, BrokerUnavailable("gone"), 3])
    connection = _LagConnection(channel)
    metrics = AuditMetrics()
    probe = LagProbe(connection, "ns.audit.events", metrics, every=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    probe.probe_when_due()
    assert metrics.registry.get_sample_value("jobsuite_audit_lag_events") == 7
    now[0] += 1
    probe.probe_when_due()  # not due: no round trip
    assert len(channel.depths) == 2
    now[0] += 5
    probe.probe_when_due()  # fails: the gauge stays, the channel is opened again next time
    assert metrics.registry.get_sample_value("jobsuite_audit_lag_events") == 7
    now[0] += 5
    probe.probe_when_due()
    assert metrics.registry.get_sample_value("jobsuite_audit_lag_events") == 3
    assert connection.opened == 2


def test_a_running_job_is_in_progress_and_its_handler_time_is_observed_once(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    running = threading.Event()

    def handler(job: Job, blobs: object) -> list[str]:
        running.set()
        release.wait(5)
        return []

    rig = Rig(tmp_path, handler)
    metrics = WorkerMetrics(CollectorRegistry(), "tester", ["resize"])
    rig.consumer.course.settler.metrics = metrics
    get = metrics.registry.get_sample_value
    try:
        rig.deliver(Job(type="resize"))
        assert running.wait(5)
        assert get("jobsuite_jobs_in_progress", {"type": "resize"}) == 1.0
        release.set()
        rig.settle_until(rig.settled(1))
        deadline = time.monotonic() + 5
        while get("jobsuite_jobs_in_progress", {"type": "resize"}) != 0.0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert get("jobsuite_job_duration_seconds_count", {"type": "resize"}) == 1.0
        assert get("jobsuite_jobs_total", {"type": "resize", "outcome": "succeeded"}) == 1.0
        # Not a job at all: a dead letter, under the type of the queue it came from.
        rig.channel.deliver(b"not json")
        rig.settle_until(rig.settled(2))
        assert get("jobsuite_jobs_total", {"type": "resize", "outcome": "dead"}) == 1.0
    finally:
        release.set()
        rig.job_thread.close()
        rig.io.close()
