"""`jobsuite queues|exchanges|bindings|declare|enqueue` against the real broker, with the
management API either absent (the shared broker has it off: a clear note, then AMQP) or a
stand-in answering what RabbitMQ's API answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from cli.app import app
from shared.config import Settings
from shared.messages import Job
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.gateway import closed_url
from tests.support.processes import service_env


@pytest.fixture
def management(settings: Settings) -> Iterator[JsonServer]:
    ns = settings.namespace
    routes = {
        "/api/queues/%2F": (200, [
            {"name": f"{ns}.jobs.resize", "messages_ready": 3, "messages_unacknowledged": 2,
             "consumers": 4},
            {"name": "someone-else.jobs.resize", "messages_ready": 9,
             "messages_unacknowledged": 9, "consumers": 9},
        ]),
        "/api/exchanges/%2F": (200, [
            {"name": "", "type": "direct", "durable": True},
            {"name": f"{ns}.jobs", "type": "direct", "durable": True},
            {"name": "amq.topic", "type": "topic", "durable": True},
        ]),
        "/api/bindings/%2F": (200, [
            {"source": "", "destination": f"{ns}.jobs.mail", "routing_key": f"{ns}.jobs.mail",
             "arguments": {}},
            {"source": f"{ns}.jobs.retry", "destination": f"{ns}.jobs.retry.200",
             "routing_key": "", "arguments": {"x-match": "all"}},
        ]),
    }  # fmt: skip
    with JsonServer(routes) as server:
        yield server


def run(settings: Settings, *args: str, management_url: str | None = None) -> Result:
    env = service_env(settings, MANAGEMENT_URL=management_url or closed_url(), COLUMNS="200")
    return CliRunner(env=env).invoke(app, list(args))


def test_without_the_management_api_queues_says_so_and_counts_via_amqp(
    settings: Settings, broker: TestBroker
) -> None:
    broker.publish_job(Job(type="render", params={"template": "document"}))
    result = run(settings, "queues")
    assert result.exit_code == 0, result.output
    assert "management API is not enabled" in result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    render_row = rows[f"{settings.namespace}.jobs.render"]
    assert [c.strip() for c in render_row.split("│")[2:5]] == ["1", "?", "0"]
    assert f"{settings.namespace}.audit.events" in rows


def test_with_the_management_api_queues_show_unacked_for_this_namespace_only(
    settings: Settings, management: JsonServer
) -> None:
    result = run(settings, "queues", management_url=management.url)
    assert result.exit_code == 0, result.output
    assert "note" not in result.stderr
    line = next(row for row in result.stdout.splitlines() if "jobs.resize" in row)
    assert [c.strip() for c in line.split("│")[1:5]] == [
        f"{settings.namespace}.jobs.resize",
        "3",
        "2",
        "4",
    ]
    assert "someone-else" not in result.stdout
    path, auth = management.requests[-1]
    assert path == "/api/queues/%2F"
    assert auth == "Basic " + base64.b64encode(b"guest:guest").decode()


def test_exchanges_and_bindings_from_the_api_and_without_it(
    settings: Settings, management: JsonServer
) -> None:
    ns = settings.namespace
    exchanges = run(settings, "exchanges", management_url=management.url)
    assert f"{ns}.jobs" in exchanges.stdout and "amq.topic" not in exchanges.stdout
    bindings = run(settings, "bindings", management_url=management.url)
    assert f"{ns}.jobs.retry.200" in bindings.stdout
    assert f"{ns}.jobs.mail" not in bindings.stdout  # the default exchange's: left out

    declared = run(settings, "bindings")
    assert "management API is not enabled" in declared.stderr
    assert "the bindings jobsuite declares" in declared.stderr
    assert f"{ns}.jobs.resize" in declared.stdout and '"x-match": "all"' in declared.stdout
    declared_exchanges = run(settings, "exchanges")
    assert (
        f"{ns}.jobs.retry" in declared_exchanges.stdout and "headers" in declared_exchanges.stdout
    )


def test_declare_and_enqueue_still_work(
    settings: Settings, broker: TestBroker, tmp_path: Path
) -> None:
    assert run(settings, "declare").exit_code == 0
    image = tmp_path / "p.png"
    Image.new("RGB", (10, 10)).save(image)
    result = run(settings, "enqueue", str(image), "--width", "5")
    assert result.exit_code == 0, result.output
    ((props, body),) = broker.drain(broker.names.task_queue("resize"))
    assert json.loads(body)["id"] == result.stdout.strip() == props.message_id
