"""AMQP_URL listing several nodes, against the real broker: a closed port first, the broker
second. A worker, the gateway and the CLI each get past the closed node and work; with every
node closed the CLI says each node's cause in one line."""

from __future__ import annotations

import time
from dataclasses import replace

from fastapi.testclient import TestClient

from services.gateway.app import create_app
from shared.config import Settings
from tests.conftest import SpawnFn
from tests.integration.test_broker_connect_errors import jobsuite
from tests.support.broker import TestBroker, close_connections_named
from tests.support.gateway import closed_url
from tests.support.keys import admin_key, bearer
from tests.support.ports import free_port
from tests.support.scripted_worker import MODULE as WORKER
from tests.support.scripted_worker import scripted_job as job


def closed_first(settings: Settings, *, short: bool = False) -> Settings:
    """`settings` whose AMQP_URL lists a closed loopback port first, then the real broker
    (as a full URL, or `short`: host:port only)."""
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    real = "127.0.0.1:5672" if short else settings.amqp_url
    return replace(settings, amqp_url=f"{closed},{real}")


def test_a_worker_passes_a_closed_node_runs_a_job_and_reconnects_through_the_list(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    worker = spawn(WORKER, settings_override=closed_first(settings, short=True))
    worker.wait_logged("consuming")
    (connected,) = worker.logged("broker_connected")
    assert connected["node"] == "127.0.0.1:5672"
    assert not worker.logged("broker_connect_failed")  # the closed node is no failed attempt
    first = job()
    broker.publish_job(first)
    events.wait_for(first.id, "job.succeeded")

    assert close_connections_named(broker.names.task_queue("resize")) == 1
    worker.wait_logged("consuming", count=2)
    assert [line["node"] for line in worker.logged("broker_connected")] == ["127.0.0.1:5672"] * 2
    after = job()
    broker.publish_job(after)
    events.wait_for(after.id, "job.succeeded")
    assert "guest:guest" not in worker.log_path.read_text()


def test_the_gateway_passes_a_closed_node_and_accepts_a_job(
    settings: Settings, broker: TestBroker
) -> None:
    app = create_app(replace(closed_first(settings), audit_url=closed_url()))
    headers = bearer(admin_key(settings.state_dir))
    with TestClient(app, base_url="http://localhost", headers=headers) as client:
        deadline = time.monotonic() + 20
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the gateway's publisher did not connect"
            time.sleep(0.05)
        accepted = client.post("/jobs/render", json={"template": "document"})
    assert accepted.status_code == 202, accepted.text
    assert broker.depth(broker.names.task_queue("render")) == 1


def test_the_cli_passes_a_closed_node(settings: Settings, broker: TestBroker) -> None:
    nodes = closed_first(settings)
    done = jobsuite(nodes, nodes.amqp_url, "dlq", "list")
    assert done.returncode == 0, done
    assert done.stderr == "0 dead letters\n", done


def test_with_every_node_closed_the_cli_says_each_nodes_cause_in_one_line(
    settings: Settings,
) -> None:
    one, two = free_port(), free_port()
    url = f"amqp://guest:s3cret@127.0.0.1:{one}/%2F,amqp://guest:s3cret@127.0.0.1:{two}/%2F"
    done = jobsuite(settings, url, "dlq", "list")
    assert done.returncode == 1, done
    (line,) = done.stderr.splitlines()
    assert line.startswith("jobsuite: "), line
    assert f"127.0.0.1:{one} refused; 127.0.0.1:{two} refused" in line, line
    assert "AMQP_URL" in line and "s3cret" not in line, line
