"""shared/asgi_app.py: FastAPI's own OpenTelemetry instrumentation is off in every service's
app: no provider is asked per request, none is set up from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import opentelemetry._logs
import opentelemetry.metrics
import opentelemetry.trace
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.audit.api import create_app as create_audit_app
from services.gateway.app import create_app as create_gateway_app
from services.mailsink.api import create_app as create_mailsink_app
from services.mailsink.chaos import Chaos
from services.mailsink.store import MailStore
from shared.asgi_app import NATIVE_TELEMETRY_OFF, fastapi_app
from tests.unit.test_gateway_auth import settings_in
from tests.unit.test_gateway_in_doubt import ScriptedPublisher


def telemetry_of(app: FastAPI) -> dict[str, Any]:
    return {name: app._telemetry[name] for name in NATIVE_TELEMETRY_OFF}  # type: ignore[attr-defined]


@pytest.fixture
def providers_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking OpenTelemetry for a global provider fails the test."""

    def asked(*_args: object) -> None:
        raise AssertionError("an OpenTelemetry provider was asked for")

    monkeypatch.setattr(opentelemetry.trace, "get_tracer_provider", asked)
    monkeypatch.setattr(opentelemetry.metrics, "get_meter_provider", asked)
    monkeypatch.setattr(opentelemetry._logs, "get_logger_provider", asked)


def test_a_request_asks_no_opentelemetry_provider(providers_refuse: None) -> None:
    app = fastapi_app()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with TestClient(app) as client:
        assert client.get("/ping").json() == {"pong": "yes"}


def test_fastapis_own_telemetry_is_off_even_when_the_environment_asks_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    assert telemetry_of(fastapi_app()) == NATIVE_TELEMETRY_OFF


def test_an_option_given_is_kept() -> None:
    app = fastapi_app(title="x", telemetry={"tracing": True})
    assert app.title == "x"
    assert app._telemetry["tracing"] is True  # type: ignore[attr-defined]


def test_every_service_app_has_it_off(tmp_path: Path) -> None:
    gateway = create_gateway_app(settings_in(tmp_path), publisher=ScriptedPublisher())
    audit = create_audit_app(lambda: None, keys=None)  # type: ignore[arg-type]
    sink = create_mailsink_app(MailStore(tmp_path / "mail"), Chaos())
    for app in (gateway, audit, sink):
        assert telemetry_of(app) == NATIVE_TELEMETRY_OFF
