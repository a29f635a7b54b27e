"""`jobsuite broker-users` (compose's init step): each role's user and permissions through the
management API (a stand-in here: the test broker has no management plugin), then the
topology declared on the real broker."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from cli import users_cmds
from cli.app import app
from shared.broker_permissions import permissions
from shared.config import Settings
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.processes import service_env


def test_each_role_gets_its_user_and_permissions_and_the_topology_is_declared(
    settings: Settings, broker: TestBroker
) -> None:
    broker.delete_namespace()
    with JsonServer() as management:
        env = service_env(
            settings,
            MANAGEMENT_URL=management.url,
            BROKER_USERS="gateway:s3cret resizer:other:pw",
            COLUMNS="250",
        )
        result = CliRunner().invoke(app, ["broker-users"], env=env)

    assert result.exit_code == 0, result.output
    gateway, resizer = (
        permissions("gateway", settings.namespace),
        permissions("resizer", settings.namespace),
    )
    assert management.puts == [
        ("/api/users/gateway", {"password": "s3cret", "tags": ""}),
        ("/api/permissions/%2F/gateway", vars(gateway)),
        ("/api/users/resizer", {"password": "other:pw", "tags": ""}),
        ("/api/permissions/%2F/resizer", vars(resizer)),
    ]
    assert "s3cret" not in result.output and "topology declared" in result.output
    assert broker.depth(broker.names.audit_events_queue) == 0  # declared again


def test_a_refusal_of_the_management_api_is_one_clear_line(settings: Settings) -> None:
    with JsonServer() as management:
        management.put_status = 401
        env = service_env(settings, MANAGEMENT_URL=management.url, BROKER_USERS="dlq:pw")
        result = CliRunner().invoke(app, ["broker-users"], env=env)
    assert result.exit_code == 1
    assert "management API refused PUT /api/users/…: 401" in result.output
    assert "pw" not in result.output.replace("PUT", "")


def test_without_broker_users_it_says_so(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["broker-users"], env=service_env(settings))
    assert result.exit_code == 2 and "BROKER_USERS is not set" in result.output


def test_an_unknown_role_is_refused_before_any_user_is_made(settings: Settings) -> None:
    with JsonServer() as management:
        env = service_env(settings, MANAGEMENT_URL=management.url, BROKER_USERS="mallory:pw")
        result = CliRunner().invoke(app, ["broker-users"], env=env)
    assert result.exit_code == 2
    assert "unknown role 'mallory'" in result.output and management.puts == []


def test_it_waits_for_every_node_of_a_cluster_before_declaring(
    settings: Settings, broker: TestBroker
) -> None:
    nodes = [{"name": "rabbit@one", "running": True}, {"name": "rabbit@two", "running": False}]
    with JsonServer({"/api/nodes": (200, nodes)}) as management:
        env = service_env(settings, MANAGEMENT_URL=management.url, BROKER_USERS="dlq:pw")
        joined = threading.Timer(1.5, lambda: nodes[1].update(running=True))
        joined.start()
        try:
            result = CliRunner().invoke(app, ["broker-users", "--await-nodes", "2"], env=env)
        finally:
            joined.cancel()
        asked = [path for path, _auth in management.requests if path == "/api/nodes"]

    assert result.exit_code == 0, result.output
    assert "2 broker nodes running: rabbit@one, rabbit@two" in result.output
    assert len(asked) >= 2, "asked again until the second node ran"
    assert management.puts, "then made the users"


def test_a_cluster_that_does_not_form_is_one_clear_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users_cmds, "NODES_WAIT_S", 1.0)
    nodes = [{"name": "rabbit@one", "running": True}]
    with JsonServer({"/api/nodes": (200, nodes)}) as management:
        env = service_env(settings, MANAGEMENT_URL=management.url, BROKER_USERS="dlq:pw")
        result = CliRunner().invoke(app, ["broker-users", "--await-nodes", "3"], env=env)
    assert result.exit_code == 1
    assert "only 1 of 3 broker nodes are running" in result.output
    assert management.puts == [], "no user made, no queue declared with too few members"
