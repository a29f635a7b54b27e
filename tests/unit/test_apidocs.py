"""/docs and /redoc need nothing from another origin: every script, style and icon the pages
name is served by the app itself, without a key, and the CSP allows no other origin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.audit.api import create_app as create_audit_app
from services.mailsink.api import create_app as create_mailsink_app
from services.mailsink.chaos import Chaos
from services.mailsink.store import MailStore
from shared import apidocs
from shared.auth import RequireKey
from shared.http_guard import GuardPolicy, HttpGuard
from shared.state.keys import SqliteApiKeyStore

_URL = re.compile(rb"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""")
LOCAL = "http://localhost"
_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def guarded_app(tmp_path: Path) -> FastAPI:
    app = FastAPI(title="t", docs_url=None, redoc_url=None)
    apidocs.install(app)
    app.add_middleware(RequireKey, store=SqliteApiKeyStore.open(tmp_path / "keys.db"))
    app.add_middleware(HttpGuard, policy=GuardPolicy())
    return app


def assets_named(page: bytes) -> list[str]:
    return [u.decode() for u in _URL.findall(page)]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_a_docs_page_names_only_its_own_files_and_each_is_served_without_a_key(
    tmp_path: Path, path: str
) -> None:
    client = TestClient(guarded_app(tmp_path), base_url=LOCAL)
    page = client.get(path)
    assert page.status_code == 200
    named = assets_named(page.content)
    assert any(u.endswith(".js") for u in named), named
    for url in named:
        assert url.startswith("/"), f"{path} names {url} from elsewhere"
        if url == "/openapi.json":
            continue
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert _TYPES[Path(url).suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 1000, url
    csp = page.headers["content-security-policy"]
    assert "http" not in csp and "*" not in csp, csp


def test_the_schema_stays_behind_the_key_and_assets_do_not_open_other_paths(
    tmp_path: Path,
) -> None:
    client = TestClient(guarded_app(tmp_path), base_url=LOCAL)
    assert client.get("/openapi.json").status_code == 200  # open, as OPEN_PATHS says
    assert client.get(f"{apidocs.ASSETS}/..%2f..%2f..%2fpyproject.toml").status_code == 404
    assert client.get("/docs/assetsx").status_code == 401
    assert client.get(f"{apidocs.ASSETS}/nothing.js").status_code == 404


def test_installing_over_fastapis_own_pages_is_refused() -> None:
    with pytest.raises(ValueError, match="docs_url=None"):
        apidocs.install(FastAPI())


def test_the_audit_and_the_mail_view_serve_their_docs_offline(tmp_path: Path) -> None:
    audit = TestClient(create_audit_app(lambda: None, keys=None), base_url=LOCAL)  # type: ignore[arg-type]
    sink = TestClient(create_mailsink_app(MailStore(tmp_path / "mail"), Chaos()), base_url=LOCAL)
    for client, pages in ((audit, ("/docs", "/redoc")), (sink, ("/docs",))):
        for path in pages:
            page = client.get(path)
            assert page.status_code == 200, path
            for url in assets_named(page.content):
                assert url.startswith("/"), url
                assert client.get(url).status_code == 200, url
    assert sink.get("/redoc").status_code == 404
