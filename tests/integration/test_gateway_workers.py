"""GATEWAY_WORKERS=2, the real gateway process on the real broker: both workers serve the one
port; a key's submission rate and `/metrics` hold across them; a worker that dies is replaced;
SIGTERM stops them all; a worker that cannot start stops the gateway with its exit code."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from shared.exit_codes import EXIT_CONFIG
from tests.conftest import SpawnFn
from tests.support.broker import EventWatcher, TestBroker
from tests.support.gateway import RunningGateway, closed_url, start_gateway
from tests.support.keys import bearer
from tests.support.ports import free_port

RENDER = {"template": "document", "data": {"blocks": ["x"]}}


@pytest.fixture
def gateway(broker: TestBroker, spawn: SpawnFn, settings: Settings) -> RunningGateway:
    gateway = start_gateway(spawn, settings, GATEWAY_WORKERS="2")
    # Ready answers from one worker; the tests need both serving.
    gateway.process.wait_logged("gateway_worker_serving", count=2)
    return gateway


def workers_of(gateway: RunningGateway) -> set[int]:
    """The pids of the gateway process's children."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == gateway.process.pid:
            found.add(int(entry.name))
    return found


def submitted_by(http: httpx.Client, events: EventWatcher) -> int:
    """The pid of the worker that took a job on `http`'s connection (its job.submitted)."""
    response = http.post("/jobs/render", json=RENDER)
    assert response.status_code == 202, response.text
    (event,) = events.wait_for(response.json()["id"], "job.submitted")
    return int(event["instance"].rpartition(":")[2])


@contextmanager
def one_connection_per_worker(
    gateway: RunningGateway, events: EventWatcher, made: list[int] | None = None
) -> Iterator[dict[int, httpx.Client]]:
    """A kept-alive connection to each worker (pid -> client): connections are opened until
    each worker has answered one (the kernel gives a new one to either), one job submitted on
    each to learn its worker, and that job's pid appended to `made`."""
    by_pid: dict[int, httpx.Client] = {}
    with ExitStack() as stack:
        for _ in range(64):
            http = stack.enter_context(gateway.client())
            pid = submitted_by(http, events)
            if made is not None:
                made.append(pid)
            by_pid.setdefault(pid, http)
            if len(by_pid) == 2:
                break
        assert set(by_pid) == workers_of(gateway), "both workers should take connections"
        yield by_pid


def submitted_total(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    (line,) = [
        x for x in text.splitlines() if x.startswith('jobsuite_jobs_submitted_total{type="render"}')
    ]
    return float(line.split()[-1])


def test_both_workers_serve_and_metrics_count_what_every_one_of_them_accepted(
    gateway: RunningGateway, broker: TestBroker
) -> None:
    events = broker.events()
    assert len(workers_of(gateway)) == 2
    with one_connection_per_worker(gateway, events) as by_pid:
        first = submitted_total(next(iter(by_pid.values())))
        for http in by_pid.values():
            for _ in range(3):
                submitted_by(http, events)
        # Whichever worker answers the scrape shows the jobs of both.
        assert [submitted_total(http) for http in by_pid.values()] == [first + 6] * 2
        requests = [
            line
            for line in next(iter(by_pid.values())).get("/metrics").text.splitlines()
            if line.startswith('jobsuite_http_requests_total{method="POST",route="/jobs/render"')
        ]
        assert requests and float(requests[0].split()[-1]) >= first + 6


def test_a_keys_submission_rate_holds_across_the_workers(
    gateway: RunningGateway, broker: TestBroker
) -> None:
    events = broker.events()
    key = gateway.client_key(f"r-{uuid.uuid4().hex[:8]}", submissions_per_second=0.001, burst=4)
    with one_connection_per_worker(gateway, events) as by_pid:
        answers = []
        for _ in range(4):  # in turn to each worker: 8 submissions against a burst of 4
            for http in by_pid.values():
                answers.append(http.post("/jobs/render", json=RENDER, headers=bearer(key)))
    assert [a.status_code for a in answers] == [202] * 4 + [429] * 4
    assert {a.json()["reason"] for a in answers[4:]} == {"rate_limited"}


def test_a_worker_that_dies_is_replaced_and_its_counts_stay(
    gateway: RunningGateway, broker: TestBroker
) -> None:
    events = broker.events()
    with one_connection_per_worker(gateway, events) as by_pid:
        before = submitted_total(next(iter(by_pid.values())))
    victim, survivor = sorted(by_pid)
    os.kill(victim, signal.SIGKILL)
    gateway.process.wait_logged("gateway_worker_exited_replacing_it")
    gateway.process.wait_logged("gateway_worker_serving", count=3)  # the replacement serves
    assert victim not in workers_of(gateway)
    assert survivor in workers_of(gateway)
    assert len(workers_of(gateway)) == 2
    made: list[int] = []
    with one_connection_per_worker(gateway, events, made) as by_pid:
        assert victim not in by_pid
        # The dead worker's counts stay in the sum, the jobs just submitted are added.
        assert submitted_total(next(iter(by_pid.values()))) == before + len(made)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_every_worker_and_the_gateway_exits_0(
    gateway: RunningGateway, stop: signal.Signals
) -> None:
    workers = workers_of(gateway)
    assert len(workers) == 2
    share = shared_folder(gateway)
    gateway.process.signal(stop)
    assert gateway.process.wait(30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert gateway.process.logged("gateway_stopping")[0]["signal"] == stop.name
    assert not share.exists()  # the rate table and metrics files go with the gateway


def shared_folder(gateway: RunningGateway) -> Path:
    """The folder the gateway's workers share (its rate table is open in each)."""
    (worker, *_) = workers_of(gateway)
    for fd in Path(f"/proc/{worker}/fd").iterdir():
        target = Path(os.readlink(fd))
        if target.name == "rates":
            return target.parent
    raise AssertionError("no rate table open in the worker")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_the_gateway_cleanly(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, workers: str
) -> None:
    gateway = start_gateway(spawn, settings, GATEWAY_WORKERS=workers)
    with gateway.client() as http:
        assert http.post("/jobs/render", json=RENDER).status_code == 202
    children = workers_of(gateway)
    gateway.process.signal(signal.SIGINT)
    assert gateway.process.wait(30) == 0
    assert "Traceback" not in gateway.process.log_path.read_text()
    assert not gateway.process.logged("gateway_worker_crashed")
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)


def test_a_killed_gateway_takes_its_workers_with_it(gateway: RunningGateway) -> None:
    workers = workers_of(gateway)
    gateway.process.kill()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its gateway"
        time.sleep(0.05)


def test_a_worker_that_cannot_start_stops_the_gateway_with_its_exit_code(
    spawn: SpawnFn, settings: Settings, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    process = spawn(
        "services.gateway",
        settings_override=settings,
        GATEWAY_WORKERS="2",
        GATEWAY_PORT=str(free_port()),
        STATE_DIR=str(not_a_folder / "state"),
        AUDIT_URL=closed_url(),
    )
    assert process.wait(30) == EXIT_CONFIG
    assert process.logged("gateway_worker_failed_to_start")
    assert not process.logged("gateway_worker_exited_replacing_it")


def test_workers_serve_an_ipv6_host(spawn: SpawnFn, settings: Settings) -> None:
    """GATEWAY_HOST=::1 with two workers: the port bound on IPv6 as one process binds it."""
    port = free_port()
    process = spawn(
        "services.gateway",
        settings_override=settings,
        GATEWAY_WORKERS="2",
        GATEWAY_HOST="::1",
        GATEWAY_PORT=str(port),
        AUDIT_URL=closed_url(),
    )
    process.wait_logged("gateway_worker_serving", count=2)
    assert httpx.get(f"http://[::1]:{port}/healthz", timeout=10).status_code == 200
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0
