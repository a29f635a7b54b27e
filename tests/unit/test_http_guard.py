"""shared/http_guard.py on a tiny ASGI app: Host allow-list, foreign origins, CORS, headers."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from shared.config import Settings
from shared.errors import ConfigError
from shared.http_guard import (
    STRICT_CSP,
    GuardPolicy,
    HttpGuard,
    normalize_origin,
    split_host,
)

SCRIPT = b"\nconst ui = 'started';\n"
DOCS = (
    b"<html><script src='https://cdn.jsdelivr.net/x.js'></script><script>" + SCRIPT + b"</script>"
)


async def echo(request: Request) -> Response:
    return JSONResponse({"method": request.method})


async def page(request: Request) -> Response:
    return HTMLResponse("<p>hello</p>")


async def own_csp(request: Request) -> Response:
    return HTMLResponse("<p>mail</p>", headers={"Content-Security-Policy": "sandbox"})


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS)


def client(policy: GuardPolicy | None = None, base_url: str = "http://localhost") -> TestClient:
    routes = [
        Route("/thing", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/page", page),
        Route("/mail", own_csp),
        Route("/docs", docs),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(HttpGuard, policy=policy)
    return TestClient(app, base_url=base_url)


def refused(response: Any, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == kind
    assert "access-control-allow-origin" not in response.headers


# --- Host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8080", "127.0.0.1:1", "[::1]:8080", "[::1]", "LOCALHOST."]
)
def test_loopback_hosts_are_served_by_default(host: str) -> None:
    response = client().get("/thing", headers={"Host": host})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "user@localhost",
        "localhost:80:80",
        "[::2]:8080",
        "testserver",
        "",
    ],
)
def test_any_other_host_is_400_host_not_allowed(host: str) -> None:
    response = client().get("/thing", headers={"Host": host})
    refused(response, 400, "host_not_allowed")
    assert "ALLOWED_HOSTS" in response.json()["detail"]


def test_allowed_hosts_come_from_the_setting() -> None:
    settings = Settings.from_env({"ALLOWED_HOSTS": "gateway, LocalHost"})
    policy = GuardPolicy.of(settings.allowed_hosts)
    assert client(policy).get("/thing", headers={"Host": "gateway:8080"}).status_code == 200
    refused(client(policy).get("/thing", headers={"Host": "127.0.0.1"}), 400, "host_not_allowed")


@pytest.mark.parametrize("value", ["http://gateway", "gateway:8080", "a b", ""])
def test_a_bad_allowed_hosts_value_fails_at_start(value: str) -> None:
    with pytest.raises(ConfigError, match="ALLOWED_HOSTS"):
        Settings.from_env({"ALLOWED_HOSTS": value})


@pytest.mark.parametrize("value", ["app.example", "ftp://app.example", "https://a/path"])
def test_a_bad_cors_origins_value_fails_at_start(value: str) -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": value})


def test_split_host_and_normalize_origin() -> None:
    assert split_host("Example.COM:81") == ("example.com", 81)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("a/b") is None
    assert normalize_origin("HTTP://LocalHost:80") == "http://localhost"
    assert normalize_origin("https://[::1]:8443") == "https://[::1]:8443"
    assert normalize_origin("null") is None
    assert normalize_origin("https://a.example/path") is None


# --- Origin -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_state_changing_request_from_a_foreign_origin_is_403(method: str) -> None:
    headers = {"Origin": "https://evil.example"}
    response = client().request(method, "/thing", headers=headers)
    refused(response, 403, "origin_not_allowed")
    assert "https://evil.example" in response.json()["detail"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8081",  # another port
        "https://localhost:8080",  # another scheme
        "http://127.0.0.1:8080",  # another host, though the same machine
        "null",  # a sandboxed page or a file
        "not an origin",
    ],
)
def test_only_the_exact_own_origin_counts_as_own(origin: str) -> None:
    http = client(base_url="http://localhost:8080")
    refused(http.post("/thing", headers={"Origin": origin}), 403, "origin_not_allowed")


def test_the_own_origin_and_no_origin_are_taken() -> None:
    http = client(base_url="http://localhost:8080")
    assert http.post("/thing", headers={"Origin": "http://localhost:8080"}).status_code == 200
    assert http.post("/thing").status_code == 200  # a CLI or curl sends no Origin


def test_sec_fetch_site_cross_site_is_403_even_without_origin() -> None:
    response = client().post("/thing", headers={"Sec-Fetch-Site": "cross-site"})
    refused(response, 403, "origin_not_allowed")
    for site in ("same-origin", "none"):
        assert client().post("/thing", headers={"Sec-Fetch-Site": site}).status_code == 200


def test_reading_from_a_foreign_origin_is_answered_without_cors_headers() -> None:
    response = client().get("/thing", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert not any(h.startswith("access-control-") for h in response.headers)


# --- CORS ---------------------------------------------------------------------------------

APP_ORIGIN = "https://app.example:8443"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}


def test_a_listed_origin_gets_its_preflight_and_its_post() -> None:
    http = client(GuardPolicy.of(["localhost"], [APP_ORIGIN]))
    preflight = http.options("/thing", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    response = http.post("/thing", headers={"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["vary"] == "Origin"


def test_an_unlisted_origin_gets_no_preflight() -> None:
    http = client(GuardPolicy.of(["localhost"], [APP_ORIGIN]))
    response = http.options("/thing", headers={"Origin": "https://evil.example", **PREFLIGHT})
    refused(response, 403, "origin_not_allowed")


def test_without_cors_origins_no_preflight_is_answered() -> None:
    response = client().options("/thing", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    refused(response, 403, "origin_not_allowed")


# --- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/thing", "/page", "/mail", "/docs", "/nowhere"])
def test_every_response_carries_the_security_headers(path: str) -> None:
    response = client().get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_refusals_carry_the_security_headers_too() -> None:
    response = client().get("/thing", headers={"Host": "evil.example"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_an_html_page_gets_the_strict_csp_and_json_none() -> None:
    assert client().get("/page").headers["content-security-policy"] == STRICT_CSP
    assert "frame-ancestors 'none'" in STRICT_CSP
    assert "content-security-policy" not in client().get("/thing").headers


def test_a_page_with_its_own_csp_keeps_it() -> None:
    assert client().get("/mail").headers["content-security-policy"] == "sandbox"


def test_the_docs_page_may_run_exactly_its_own_inline_script() -> None:
    response = client().get("/docs")
    assert response.content == DOCS
    csp = response.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(SCRIPT).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in csp
    assert "https:" not in csp  # nothing from another origin
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in csp
