"""Fixtures of the integration tests: a broker connection opened as a worker's is, and the
gateway tests' stand-in audit read API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.amqp import Connection, connect_once
from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.gateway import RunningGateway, start_gateway


@pytest.fixture
def eager(settings: Settings, broker: TestBroker) -> Iterator[Connection]:
    """A connection opened as a worker's is (`eager_send`), closed at the end."""
    connection = connect_once(settings, "eager-test", eager_send=True)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def fake_audit() -> Iterator[JsonServer]:
    with JsonServer() as server:
        yield server


@pytest.fixture
def gateway_with_fake_audit(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, fake_audit: JsonServer
) -> RunningGateway:
    return start_gateway(spawn, settings, audit_url=fake_audit.url)
