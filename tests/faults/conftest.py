"""Fixtures of the fault tests."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.tcpproxy import TcpProxy


@pytest.fixture
def proxy(rabbitmq: str) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the test broker. Ask for it before `spawn`, so the services
    behind it stop before it does."""
    broker = urlsplit(rabbitmq)
    with TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as tcp_proxy:
        yield tcp_proxy
