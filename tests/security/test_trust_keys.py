"""API keys against the running suite: no key, a bad key, another client's jobs, the per-key
limits. Each case asserts the exact status and that the gateway still serves."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.ids import follow_up_id
from shared.messages import Job
from shared.state import API_KEYS_FILE
from shared.state.keys import SqliteApiKeyStore
from tests.security.conftest import GOOD_RECIPIENT, Suite, small_png
from tests.support.broker import EventWatcher

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
MAIL = {"to": [GOOD_RECIPIENT], "subject": "trust", "text": "hello"}


@pytest.fixture(scope="module")
def keys(suite: Suite) -> Iterator[SqliteApiKeyStore]:
    store = SqliteApiKeyStore.open(suite.settings.state_dir / API_KEYS_FILE)
    yield store
    store.close()


def client(suite: Suite, key: str | None) -> httpx.Client:
    return suite.gateway.client(key=key)


# The suite runs no audit service: an unknown id is a 503 ("unknown while the audit is
# unreachable"), and a job the caller may not see must answer exactly the same.
UNKNOWN = (404, 503)


def still_serves(suite: Suite) -> None:
    assert suite.http.get("/healthz").status_code == 200
    assert suite.http.get(f"/jobs/{UNKNOWN_ID}").status_code in UNKNOWN  # the admin key works
    suite.check_after_case()


def same_answer(theirs: httpx.Response, unknown: httpx.Response, job_id: str) -> None:
    """Another client's job answers exactly as an id that does not exist."""
    assert theirs.status_code == unknown.status_code, theirs.text
    assert theirs.status_code in UNKNOWN
    assert theirs.text.replace(job_id, "ID") == unknown.text.replace(UNKNOWN_ID, "ID")


def resize_by(http: httpx.Client) -> str:
    files = {"file": ("p.png", io.BytesIO(small_png()), "image/png")}
    response = http.post("/jobs/resize", files=files, data={"width": "16"})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_key"),
        ("Bearer jsk_not-a-key-anyone-made", "unknown_key"),
        ("Basic dXNlcjpwYXNz", "malformed_header"),  # the gateway takes Bearer only
        ("Bearer", "malformed_header"),
        ("Bearer two words", "malformed_header"),
        ("Token abc", "malformed_header"),
    ],
)
def test_no_usable_key_is_401_naming_why(suite: Suite, header: str | None, reason: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    with client(suite, None) as http:
        for method, path in [("GET", f"/jobs/{UNKNOWN_ID}"), ("POST", "/jobs/render")]:
            response = http.request(method, path, headers=headers, json={"template": "document"})
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["reason"] == reason
    still_serves(suite)


def test_revoked_and_expired_keys_are_401(suite: Suite, keys: SqliteApiKeyStore) -> None:
    _r, revoked = keys.create(f"gone-{uuid.uuid4().hex[:8]}")
    with client(suite, revoked) as http:
        assert http.get(f"/jobs/{UNKNOWN_ID}").status_code in UNKNOWN  # usable until revoked
        keys.revoke(_r.name)
        response = http.get(f"/jobs/{UNKNOWN_ID}")
        assert (response.status_code, response.json()["reason"]) == (401, "revoked_key")
    past = datetime.now(UTC) - timedelta(seconds=1)
    _e, expired = keys.create(f"old-{uuid.uuid4().hex[:8]}", expires_at=past)
    with client(suite, expired) as http:
        response = http.get(f"/jobs/{UNKNOWN_ID}")
        assert (response.status_code, response.json()["reason"]) == (401, "expired_key")
        assert response.headers["www-authenticate"] == "Bearer"
    still_serves(suite)


def test_health_metrics_and_docs_stay_open_and_the_schema_declares_bearer(suite: Suite) -> None:
    with client(suite, None) as http:
        for path in ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json"):
            assert http.get(path).status_code == 200, path
        schema = http.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(iter(schemes.values())).items()
    assert schema["paths"]["/jobs/{job_id}"]["get"]["security"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_a_client_sees_only_its_own_jobs_and_admins_see_all(
    suite: Suite, events: EventWatcher
) -> None:
    a_key = suite.gateway.client_key(f"a-{uuid.uuid4().hex[:8]}")
    b_key = suite.gateway.client_key(f"b-{uuid.uuid4().hex[:8]}")
    with client(suite, a_key) as a, client(suite, b_key) as b:
        job_id = resize_by(a)
        suite.succeeded(events, job_id)
        assert a.get(f"/jobs/{job_id}").json()["client"].startswith("a-")
        listing = a.get(f"/jobs/{job_id}/result")
        assert listing.status_code == 200
        name = "16x12.png"
        assert a.get(f"/jobs/{job_id}/result/{name}").status_code == 200
        for path in ("/jobs/{}", "/jobs/{}/result", "/jobs/{}/result/" + name):
            same_answer(b.get(path.format(job_id)), b.get(path.format(UNKNOWN_ID)), job_id)
        # As an attachment: the same answer as an id that does not exist.
        theirs = b.post("/jobs/mail", json={**MAIL, "attachments": [job_id]})
        unknown = b.post("/jobs/mail", json={**MAIL, "attachments": [UNKNOWN_ID]})
        same_answer(theirs, unknown, job_id)
        # Its owner may attach it.
        assert a.post("/jobs/mail", json={**MAIL, "attachments": [job_id]}).status_code == 202
    assert suite.http.get(f"/jobs/{job_id}").status_code == 200  # admin
    assert suite.http.get(f"/jobs/{job_id}/result/{name}").status_code == 200
    # An admin may see it but not mail it as its own: the mailer would refuse it too.
    assert suite.http.post("/jobs/mail", json={**MAIL, "attachments": [job_id]}).status_code == 403
    still_serves(suite)


def test_a_job_without_a_client_is_for_admins_only(suite: Suite, events: EventWatcher) -> None:
    job = suite.job_with_input("resize", {"width": 16}, small_png(), "p.png")
    suite.broker.publish_job(job)  # straight onto the queue: no client
    suite.succeeded(events, job.id)
    key = suite.gateway.client_key(f"c-{uuid.uuid4().hex[:8]}")
    with client(suite, key) as c:
        for path in ("/jobs/{}", "/jobs/{}/result"):
            same_answer(c.get(path.format(job.id)), c.get(path.format(UNKNOWN_ID)), job.id)
    assert suite.http.get(f"/jobs/{job.id}/result").status_code == 200
    still_serves(suite)


def test_follow_ups_and_events_carry_the_client(suite: Suite, events: EventWatcher) -> None:
    name = f"f-{uuid.uuid4().hex[:8]}"
    with client(suite, suite.gateway.client_key(name)) as http:
        files = {"file": ("p.png", io.BytesIO(small_png()), "image/png")}
        then = (
            '{"type": "mail", "params": {"to": ["ann@example.org"], "subject": "s", "text": "t"}}'
        )
        response = http.post("/jobs/resize", files=files, data={"width": "16", "then": then})
        assert response.status_code == 202, response.text
        parent = response.json()["id"]
    child = follow_up_id(parent)
    suite.succeeded(events, parent)
    suite.succeeded(events, child)
    assert {e.get("client") for e in events.of(parent) + events.of(child)} == {name}
    still_serves(suite)


def test_the_mailer_refuses_another_clients_attachment(suite: Suite, events: EventWatcher) -> None:
    owner = f"o-{uuid.uuid4().hex[:8]}"
    with client(suite, suite.gateway.client_key(owner)) as http:
        job_id = resize_by(http)
    suite.succeeded(events, job_id)
    forged = Job(type="mail", params={**MAIL, "attachments": [job_id]}, client="someone-else")
    failed = suite.publish_with_good_job(events, forged)
    assert failed["event"] == "job.failed"
    assert failed["error"]["kind"] == "foreign_attachment"
    still_serves(suite)


def test_too_many_recipients_for_the_key_is_422_naming_the_limit(suite: Suite) -> None:
    key = suite.gateway.client_key(f"r-{uuid.uuid4().hex[:8]}", recipients_per_mail=2)
    crowd = [f"r{i}@example.org" for i in range(3)]
    with client(suite, key) as http:
        response = http.post("/jobs/mail", json={**MAIL, "to": crowd})
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert (error["loc"], error["type"]) == (["body", "to"], "too_many_recipients_for_key")
        assert "may send to 2 per mail" in error["msg"]
        assert http.post("/jobs/mail", json={**MAIL, "to": crowd[:2]}).status_code == 202
    still_serves(suite)


def test_mails_over_the_hourly_limit_are_429_with_retry_after(suite: Suite) -> None:
    key = suite.gateway.client_key(f"h-{uuid.uuid4().hex[:8]}", mails_per_hour=3)
    render = {"template": "document", "data": {"blocks": ["x"]}}
    with client(suite, key) as http:
        # A mail as a follow-up counts too.
        chained = http.post(
            "/jobs/render", json={**render, "then": {"type": "mail", "params": MAIL}}
        )
        answers = [chained, *(http.post("/jobs/mail", json=MAIL) for _ in range(3))]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert int(answers[3].headers["retry-after"]) > 0
        assert "3 mails an hour" in answers[3].json()["detail"]
        # Jobs that send no mail are not limited by it.
        assert http.post("/jobs/render", json=render).status_code == 202
    still_serves(suite)


def test_submissions_over_the_keys_rate_are_429_with_retry_after(suite: Suite) -> None:
    key = suite.gateway.client_key(
        f"s-{uuid.uuid4().hex[:8]}", submissions_per_second=0.01, burst=2
    )
    body = {"template": "document", "data": {"blocks": ["x"]}}
    with client(suite, key) as http:
        answers = [http.post("/jobs/render", json=body) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["reason"] == "rate_limited"
        assert 1 <= int(answers[2].headers["retry-after"]) <= 100
        assert http.get(f"/jobs/{UNKNOWN_ID}").status_code in UNKNOWN  # reading: no limit
    still_serves(suite)


def test_an_idempotency_key_is_the_clients_own(suite: Suite) -> None:
    shared_key = {"Idempotency-Key": f"same-{uuid.uuid4()}"}
    body = {"template": "document", "data": {"blocks": ["mine"]}}
    with (
        client(suite, suite.gateway.client_key(f"i-{uuid.uuid4().hex[:8]}")) as a,
        client(suite, suite.gateway.client_key(f"j-{uuid.uuid4().hex[:8]}")) as b,
    ):
        first = a.post("/jobs/render", json=body, headers=shared_key)
        second = b.post("/jobs/render", json=body, headers=shared_key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]  # B never learns A's job id
    still_serves(suite)
