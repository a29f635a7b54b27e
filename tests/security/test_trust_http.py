"""HTTP hygiene and bad input against the real services (issue 13, items 6 and 10).

The gateway and the mail sink are the session suite's; an audit service runs beside them for
this module. Each case asserts the exact status and the kind of refusal, then that the
service still serves (for the gateway: a good job succeeds).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.conftest import GOOD_RECIPIENT, Suite, small_png
from tests.support.audit import AuditService, start_audit
from tests.support.broker import EventWatcher
from tests.support.keys import bearer
from tests.support.processes import Spawner

EVIL = "https://evil.example"
JSON = {"content-type": "application/json"}
BOUNDARY = "trust-http-boundary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
END = f"--{BOUNDARY}--\r\n".encode()
NOT_UTF8_JSON = b'{"to": ["a\xff@example.org"], "subject": "s", "text": "t"}'
GOOD_MAIL = {"to": [GOOD_RECIPIENT], "subject": "trust http", "text": "still serving"}


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if filename:
        head += "Content-Type: image/png\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def upload(*fields: bytes, close: bool = True) -> bytes:
    return b"".join(fields) + part("file", small_png(), "in.png") + (END if close else b"")


def inputs(suite: Suite) -> set[Path]:
    root = suite.settings.blob_dir / "inputs"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def gateway_serves(suite: Suite, events: EventWatcher) -> None:
    response = suite.http.post("/jobs/mail", json=GOOD_MAIL)
    assert response.status_code == 202, response.text
    suite.succeeded(events, response.json()["id"])
    suite.check_after_case()


def refused_by_guard(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == kind
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


def the_422(response: httpx.Response) -> tuple[list[Any], str]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return error["loc"], error["type"]


def rejected_kinds(suite: Suite, events: EventWatcher, kind: str) -> None:
    """The refusal reached the audit trail as a `job.rejected` of that kind."""
    suite.broker.wait_until(
        lambda: any(
            e["event"] == "job.rejected" and (e.get("error") or {}).get("kind") == kind
            for e in events.poll()
        ),
        15,
        f"job.rejected {kind}",
    )


# --- the gateway: Host and Origin ---------------------------------------------------------


def test_a_cross_site_form_post_is_refused_and_keeps_nothing(
    suite: Suite, events: EventWatcher
) -> None:
    before = inputs(suite)
    response = suite.http.post(
        "/jobs/resize",
        content=upload(part("width", b"8")),
        headers={**MULTIPART, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    )
    refused_by_guard(response, 403, "origin_not_allowed")
    assert EVIL in response.json()["detail"]
    assert inputs(suite) == before
    gateway_serves(suite, events)


def test_a_post_from_a_browser_on_another_site_without_origin_is_refused(
    suite: Suite, events: EventWatcher
) -> None:
    response = suite.http.post(
        "/jobs/mail", json=GOOD_MAIL, headers={"Sec-Fetch-Site": "cross-site"}
    )
    refused_by_guard(response, 403, "origin_not_allowed")
    gateway_serves(suite, events)


def test_a_post_from_the_gateways_own_origin_is_taken(suite: Suite, events: EventWatcher) -> None:
    own = str(suite.http.base_url).rstrip("/")
    response = suite.http.post("/jobs/mail", json=GOOD_MAIL, headers={"Origin": own})
    assert response.status_code == 202, response.text
    suite.succeeded(events, response.json()["id"])


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_dns_rebinding_a_foreign_host_is_400(
    suite: Suite, events: EventWatcher, method: str
) -> None:
    path = "/jobs/mail" if method == "POST" else "/healthz"
    kwargs: dict[str, Any] = {"json": GOOD_MAIL} if method == "POST" else {}
    response = suite.http.request(method, path, headers={"Host": "evil.example"}, **kwargs)
    refused_by_guard(response, 400, "host_not_allowed")
    assert "evil.example" in response.json()["detail"]
    gateway_serves(suite, events)


def test_no_cors_preflight_is_answered_by_default(suite: Suite, events: EventWatcher) -> None:
    response = suite.http.options(
        "/jobs/mail", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    )
    refused_by_guard(response, 403, "origin_not_allowed")
    gateway_serves(suite, events)


def test_the_gateways_pages_carry_the_security_headers(suite: Suite) -> None:
    for path in ("/docs", "/redoc", "/healthz", "/jobs/unknown-id"):
        response = suite.http.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["x-frame-options"] == "DENY", path
    csp = suite.http.get("/docs").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "script-src 'self' 'sha256-" in csp and "https:" not in csp


# --- the gateway: bad input ---------------------------------------------------------------


def test_a_lone_surrogate_is_422_and_does_not_hold_the_idempotency_key(
    suite: Suite, events: EventWatcher
) -> None:
    key = {"Idempotency-Key": "trust-http-surrogate-mail", **JSON}
    bad = b'{"to": ["ann@example.org"], "subject": "\\udfff", "text": "x"}'
    response = suite.http.post("/jobs/mail", content=bad, headers=key)
    assert the_422(response) == (["body", "subject"], "lone_surrogate")
    good = suite.http.post("/jobs/mail", json=GOOD_MAIL, headers=key)
    assert good.status_code == 202, good.text  # not 409: the key was never taken
    suite.succeeded(events, good.json()["id"])
    suite.check_after_case()


def test_a_lone_surrogate_in_a_resize_leaves_no_orphan_input_and_frees_the_key(
    suite: Suite, events: EventWatcher
) -> None:
    before = inputs(suite)
    key = {"Idempotency-Key": "trust-http-surrogate-resize", **MULTIPART}
    then = b'{"type": "mail", "params": {"to": ["ann@example.org"], "subject": "\\udfff"}}'
    response = suite.http.post(
        "/jobs/resize", content=upload(part("width", b"8"), part("then", then)), headers=key
    )
    assert the_422(response) == (["body", "then", "params", "subject"], "lone_surrogate")
    assert inputs(suite) == before
    good = suite.http.post("/jobs/resize", content=upload(part("width", b"8")), headers=key)
    assert good.status_code == 202, good.text
    suite.succeeded(events, good.json()["id"])
    suite.check_after_case()


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (
            "/jobs/mail",
            b'{"to": ["ann@example.org"], "to": ["bob@example.org"], "subject": "s", "text": "t"}',
            ["body", "to"],
        ),
        (
            "/jobs/render",
            b'{"template": "document", "data": {"blocks": ["a"], "blocks": ["b"]}}',
            ["body", "data", "blocks"],
        ),
    ],
    ids=["to-twice", "nested"],
)
def test_a_duplicate_json_key_is_422_naming_it(
    suite: Suite, events: EventWatcher, path: str, body: bytes, loc: list[str]
) -> None:
    response = suite.http.post(path, content=body, headers=JSON)
    assert the_422(response) == (loc, "duplicate_key")
    gateway_serves(suite, events)


def test_a_duplicate_form_field_is_422_naming_it(suite: Suite, events: EventWatcher) -> None:
    before = inputs(suite)
    body = upload(part("width", b"8"), part("width", b"4000"))
    response = suite.http.post("/jobs/resize", content=body, headers=MULTIPART)
    assert the_422(response) == (["body", "width"], "duplicate_field")
    assert inputs(suite) == before
    gateway_serves(suite, events)


def test_a_truncated_multipart_body_is_400(suite: Suite, events: EventWatcher) -> None:
    before = inputs(suite)
    body = upload(part("width", b"8"), close=False) + f"--{BOUNDARY}".encode()
    response = suite.http.post("/jobs/resize", content=body, headers=MULTIPART)
    assert response.status_code == 400, response.text
    assert "closing boundary" in response.json()["detail"]
    rejected_kinds(suite, events, "truncated_multipart")
    assert inputs(suite) == before
    gateway_serves(suite, events)


@pytest.mark.parametrize(
    ("path", "body", "headers", "expected"),
    [
        ("/jobs/mail", NOT_UTF8_JSON, JSON, ["body", NOT_UTF8_JSON.index(b"\xff")]),
        ("/jobs/resize", upload(part("width", b"8\xff")), MULTIPART, ["body", "width"]),
    ],
    ids=["json", "form-field"],
)
def test_a_body_that_is_not_utf8_is_422(
    suite: Suite,
    events: EventWatcher,
    path: str,
    body: bytes,
    headers: dict[str, str],
    expected: list[Any],
) -> None:
    response = suite.http.post(path, content=body, headers=headers)
    loc, kind = the_422(response)
    assert (loc, kind) == (expected, "not_utf8" if path == "/jobs/resize" else "json_invalid")
    assert "UTF-8" in response.text
    gateway_serves(suite, events)


# --- the audit read API -------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditService]:
    # Outside the suite's folder: its census would take the audit's files for strays.
    root = tmp_path_factory.mktemp("trust-http-audit")
    (root / "logs").mkdir()
    spawn = Spawner(suite.settings, root / "logs")
    try:
        yield start_audit(spawn, suite.settings, root / "audit")
    finally:
        spawn.stop_all()


def audit_serves(audit: AuditService) -> None:
    response = audit.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_the_audit_refuses_a_foreign_host(audit: AuditService) -> None:
    response = httpx.get(f"{audit.url}/jobs", headers={"Host": "evil.example"})
    refused_by_guard(response, 400, "host_not_allowed")
    audit_serves(audit)


def test_the_audit_refuses_a_post_from_a_foreign_origin(audit: AuditService) -> None:
    response = httpx.post(f"{audit.url}/jobs", headers={"Origin": EVIL})
    refused_by_guard(response, 403, "origin_not_allowed")
    audit_serves(audit)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/jobs?type=%ED%BF%BF", 200),  # a surrogate's UTF-8 bytes, as a query
        ("/jobs?type=%FF%FE", 200),
        ("/jobs/%ED%BF%BF", 404),
        ("/jobs?since=%ED%BF%BF", 422),
        ("/events?since=%F0", 422),
    ],
)
def test_the_audit_answers_query_strings_that_are_not_utf8(
    audit: AuditService, path: str, status: int
) -> None:
    response = httpx.get(audit.url + path, headers=bearer(audit.key))
    assert response.status_code == status, response.text
    audit_serves(audit)


def test_the_audit_docs_carry_a_csp(audit: AuditService) -> None:
    response = audit.get("/docs")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# --- the mail sink's view -----------------------------------------------------------------


def sink_serves(suite: Suite) -> None:
    response = suite.sink.get("/healthz")
    assert response.status_code == 200, response.text


def test_the_mail_view_refuses_a_foreign_host(suite: Suite) -> None:
    response = httpx.get(f"{suite.sink.url}/", headers={"Host": "evil.example:8025"})
    refused_by_guard(response, 400, "host_not_allowed")
    sink_serves(suite)


def test_a_cross_site_page_cannot_switch_the_sinks_chaos_on(suite: Suite) -> None:
    before = suite.sink.get("/chaos")
    response = httpx.post(f"{suite.sink.url}/chaos", json={"code": 550}, headers={"Origin": EVIL})
    refused_by_guard(response, 403, "origin_not_allowed")
    assert suite.sink.get("/chaos").json() == before.json()
    sink_serves(suite)


def test_the_mail_view_page_carries_a_csp_that_frames_nothing(suite: Suite) -> None:
    response = suite.sink.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    # No referrer leaves the origin (a link in a mail learns nothing of the view); within
    # it, the page's own delete forms need one, or the browser sends `Origin: null`.
    assert response.headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize(
    "path", ["/messages/%ED%BF%BF", "/messages/%FF/raw", "/messages/x/attachments/%ED%BF%BF"]
)
def test_the_mail_view_answers_paths_that_are_not_utf8(suite: Suite, path: str) -> None:
    response = suite.sink.get(path)
    assert response.status_code == 404, response.text
    sink_serves(suite)


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (b'{"code": 451, "on": "\\udfff"}', ["body", "on"], "lone_surrogate"),
        (b'{"code": 451, "code": 550}', ["body", "code"], "duplicate_key"),
        (b'{"code": 451, "on": "data\xff"}', ["body", 25], "json_invalid"),  # at the byte
    ],
    ids=["lone-surrogate", "duplicate-key", "not-utf8"],
)
def test_the_sinks_chaos_hook_refuses_bad_json_with_422(
    suite: Suite, body: bytes, loc: list[Any], kind: str
) -> None:
    before = suite.sink.get("/chaos").json()
    response = httpx.post(
        f"{suite.sink.url}/chaos", content=body, headers=JSON, auth=suite.sink.auth
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, kind)
    assert suite.sink.get("/chaos").json() == before
    sink_serves(suite)
