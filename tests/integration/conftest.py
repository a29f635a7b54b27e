"""Fixtures of the gateway tests that talk to a stand-in audit read API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.gateway import RunningGateway, start_gateway


@pytest.fixture
def fake_audit() -> Iterator[JsonServer]:
    with JsonServer() as server:
        yield server


@pytest.fixture
def gateway_with_fake_audit(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, fake_audit: JsonServer
) -> RunningGateway:
    return start_gateway(spawn, settings, audit_url=fake_audit.url)
