"""The gateway's key check in-process: the one test file that runs with AUTH_DISABLED=true on
purpose, and a client key's jobs carrying its name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from shared.config import Settings
from tests.support.keys import bearer, make_key
from tests.unit.test_gateway_in_doubt import ScriptedPublisher

RENDER = {"template": "document", "data": {"blocks": ["x"]}}
UNKNOWN = "/jobs/00000000-0000-4000-8000-000000000000"


def settings_in(tmp_path: Path, **changes: object) -> Settings:
    base = replace(
        Settings(),
        blob_dir=tmp_path / "blobs",
        state_dir=tmp_path / "state",
        audit_url="http://127.0.0.1:9",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_auth_disabled_lets_every_request_through_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = ScriptedPublisher()
    app = create_app(settings_in(tmp_path, auth_disabled=True), publisher=publisher)
    with TestClient(app, base_url="http://localhost") as http:
        assert http.post("/jobs/render", json=RENDER).status_code == 202
        assert http.get(UNKNOWN).status_code == 503  # no 401: the audit is simply not there
    assert "client" not in publisher.jobs[0]
    assert "auth_disabled" in capsys.readouterr().out


def test_with_keys_a_job_carries_its_clients_name(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    publisher = ScriptedPublisher()
    key = make_key(settings.state_dir, "shop")
    app = create_app(settings, publisher=publisher)
    with TestClient(app, base_url="http://localhost") as http:
        assert http.post("/jobs/render", json=RENDER).status_code == 401
        answer = http.post("/jobs/render", json=RENDER, headers=bearer(key))
        assert answer.status_code == 202, answer.text
    assert publisher.jobs[0]["client"] == "shop"


def test_a_malformed_body_without_a_key_is_401_not_422(tmp_path: Path) -> None:
    app = create_app(settings_in(tmp_path), publisher=ScriptedPublisher())
    with TestClient(app, base_url="http://localhost") as http:
        response = http.post(
            "/jobs/render", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 401
