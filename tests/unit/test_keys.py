"""API keys without services: the store, reading the Authorization header, the token bucket,
the audit API's door, a follow-up's client, the key file."""

from __future__ import annotations

import base64
import sqlite3
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from fastapi.testclient import TestClient

from services.audit.api import create_app
from services.audit.queries import Queries
from services.audit.recorder import Recorder
from services.gateway.ratelimit import SubmissionRate
from shared.auth import Caller, Unauthorized, WithServiceKey, identify, presented_key
from shared.config import Settings
from shared.errors import StateError
from shared.keyfile import client_key, key_file, read_key_file, write_key_file
from shared.messages import FollowUp, Job
from shared.state import API_KEYS_FILE, KeyLimits, open_api_keys
from shared.state.keys import KEY_PREFIX, ApiKeyStore, hash_secret
from tests.support.audit import make_event, new_job_id
from tests.support.postgres import query


@pytest.fixture
def store(state_settings: Settings) -> Iterator[ApiKeyStore]:
    """The key store, once on each backend (SQLite, PostgreSQL)."""
    opened = open_api_keys(state_settings)
    yield opened
    opened.close()


def test_a_key_is_stored_as_its_hash_only(store: ApiKeyStore, state_settings: Settings) -> None:
    record, secret = store.create("alice")
    assert secret.startswith(KEY_PREFIX) and len(secret) > 40
    assert (record.name, record.admin) == ("alice", False)
    if state_settings.state_url:
        rows = query(state_settings.state_url, "SELECT * FROM api_keys")
    else:
        assert secret.encode() not in (state_settings.state_dir / API_KEYS_FILE).read_bytes()
        with sqlite3.connect(state_settings.state_dir / API_KEYS_FILE) as db:
            rows = db.execute("SELECT * FROM api_keys").fetchall()
    assert secret not in repr(rows) and hash_secret(secret) in repr(rows)
    assert store.authenticate(secret) == store.find("alice")


def test_a_name_in_use_needs_rotate_and_rotation_retires_the_old_key(
    store: ApiKeyStore,
) -> None:
    _r, first = store.create("alice")
    assert store.authenticate(first) is not None  # known (and kept) before the rotation
    with pytest.raises(StateError, match="exists"):
        store.create("alice")
    _r, second = store.create("alice", admin=True, rotate=True)
    assert store.authenticate(first) is None
    found = store.authenticate(second)
    assert found is not None and found.admin


def test_names_are_checked(store: ApiKeyStore) -> None:
    for bad in ("", "Alice", "-x", "a b", "a/b", "x" * 65):
        with pytest.raises(StateError, match="invalid key name"):
            store.create(bad)


def test_revoked_and_expired_keys_say_so(store: ApiKeyStore) -> None:
    _r, revoked = store.create("gone")
    assert store.authenticate(revoked) is not None  # known (and kept) before it is revoked
    store.revoke("gone")
    with pytest.raises(Unauthorized) as e:
        identify(store, f"Bearer {revoked}")
    assert e.value.reason == "revoked_key"
    _r, expired = store.create("old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(Unauthorized) as e:
        identify(store, f"Bearer {expired}")
    assert e.value.reason == "expired_key"
    with pytest.raises(StateError, match="no key named"):
        store.revoke("nobody")
    # A revoked name may be created again without --rotate.
    store.create("gone")


def test_a_change_made_elsewhere_counts_at_the_next_request(
    store: ApiKeyStore, state_settings: Settings
) -> None:
    """A key the store has found (and keeps) is revoked, rotated or made by another
    connection, as `jobsuite keys` in another process or another replica would."""
    _r, alice = store.create("alice")
    _r, bob = store.create("bob")
    soon = datetime.now(UTC) + timedelta(seconds=1)
    _r, brief = store.create("brief", expires_at=soon)
    for secret in (alice, bob, brief):
        assert store.authenticate(secret) is not None
    elsewhere = open_api_keys(state_settings)
    try:
        elsewhere.revoke("alice")
        _r, bob_again = elsewhere.create("bob", rotate=True)
        _r, carol = elsewhere.create("carol")
    finally:
        elsewhere.close()
    with pytest.raises(Unauthorized) as e:
        identify(store, f"Bearer {alice}")
    assert e.value.reason == "revoked_key"
    assert store.authenticate(bob) is None
    assert [store.authenticate(s).name for s in (bob_again, carol)] == ["bob", "carol"]  # type: ignore[union-attr]
    assert identify(store, f"Bearer {brief}").name == "brief"
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.01)
    with pytest.raises(Unauthorized) as e:  # a kept key's expiry is the request's to check
        identify(store, f"Bearer {brief}")
    assert e.value.reason == "expired_key"


def test_limits_are_kept_with_the_key(store: ApiKeyStore) -> None:
    limits = KeyLimits(recipients_per_mail=3, mails_per_hour=7, submissions_per_second=0.5, burst=2)
    _r, secret = store.create("small", limits=limits)
    found = store.authenticate(secret)
    assert found is not None and found.limits == limits
    assert [k.name for k in store.list()] == ["small"]


@pytest.mark.parametrize(
    ("header", "basic", "reason"),
    [
        (None, False, "missing_key"),
        ("", False, "missing_key"),
        ("Bearer", False, "malformed_header"),
        ("Bearer a b", False, "malformed_header"),
        ("Basic " + base64.b64encode(b"u:k").decode(), False, "malformed_header"),
        ("Basic !!!", True, "malformed_header"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), True, "malformed_header"),
        ("Bearer " + "x" * 2000, False, "malformed_header"),
    ],
)
def test_a_header_without_a_key_is_refused_naming_why(
    header: str | None, basic: bool, reason: str
) -> None:
    with pytest.raises(Unauthorized) as e:
        presented_key(header, basic=basic)
    assert e.value.reason == reason


def test_basic_carries_the_key_as_its_password() -> None:
    header = "Basic " + base64.b64encode(b"anyone:jsk_abc").decode()
    assert presented_key(header, basic=True) == "jsk_abc"
    assert presented_key("bearer jsk_abc", basic=False) == "jsk_abc"


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    rate = SubmissionRate(clock=lambda: now[0])
    caller = Caller("k", False, KeyLimits(submissions_per_second=2, burst=3))
    assert [rate.wait_s(caller) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rate.wait_s(caller) == pytest.approx(0.5)
    now[0] += 0.5
    assert rate.wait_s(caller) == 0.0
    assert rate.wait_s(Caller("other", False, KeyLimits(burst=1))) == 0.0  # its own bucket
    assert rate.wait_s(Caller(None, True)) == 0.0  # AUTH_DISABLED: no limits


def test_a_follow_up_inherits_the_client() -> None:
    job = Job(type="resize", then=FollowUp(type="mail", params={}), client="alice")
    follow_up = job.follow_up(["outputs/x/a.png"])
    assert follow_up is not None and follow_up.client == "alice"


def test_a_caller_sees_its_own_jobs_and_admins_every_one() -> None:
    alice, admin = Caller("alice", False), Caller("root", True)
    assert alice.may_see("alice") and not alice.may_see("bob") and not alice.may_see(None)
    assert admin.may_see("bob") and admin.may_see(None)


def test_the_audit_api_needs_an_admin_key_bearer_or_basic(
    tmp_path: Path, store: ApiKeyStore
) -> None:
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit"))
    job_id = new_job_id()
    recorder.record([("events", make_event("job.submitted", job_id, client="alice"))])
    app = create_app(Queries(recorder.model.path), keys=store)
    http = TestClient(app, base_url="http://localhost")
    _r, admin = store.create("root", admin=True)
    _r, client = store.create("alice")
    missing = http.get("/jobs")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Basic realm="jobsuite audit"'
    assert http.get("/healthz").status_code == 200
    assert http.get("/openapi.json").status_code == 401  # only /healthz is open
    assert http.get("/jobs", headers={"Authorization": f"Bearer {client}"}).status_code == 403
    basic = http.get(f"/jobs/{job_id}", auth=("anyone", admin))
    assert basic.status_code == 200 and basic.json()["client"] == "alice"
    assert http.get("/stats", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    recorder.close()


def test_the_audit_takes_the_shared_audit_api_key_as_an_admin_and_nothing_like_it(
    tmp_path: Path, store: ApiKeyStore
) -> None:
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit"))
    shared_secret = "s3cret-shared-with-the-gateway-only"
    keys = cast(ApiKeyStore, WithServiceKey(store, shared_secret, "gateway-reader"))
    http = TestClient(
        create_app(Queries(recorder.model.path), keys=keys), base_url="http://localhost"
    )
    _r, admin = store.create("root", admin=True)

    assert (
        http.get("/stats", headers={"Authorization": f"Bearer {shared_secret}"}).status_code == 200
    )
    assert http.get("/stats", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    for wrong in (shared_secret[:-1], shared_secret + "x", shared_secret.upper()):
        answer = http.get("/stats", headers={"Authorization": f"Bearer {wrong}"})
        assert (answer.status_code, answer.json()["reason"]) == (401, "unknown_key")
    recorder.close()


def test_key_events_are_in_the_log_not_in_the_job_read_model(tmp_path: Path) -> None:
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit"))
    event = make_event("key.created", "key:alice", job_type="key", client="alice")
    recorder.record([("events", event)])
    queries = Queries(recorder.model.path)
    assert queries.job("key:alice") is None
    assert [e["event"]["event"] for e in queries.events(0, 10)] == ["key.created"]
    recorder.close()


def test_the_key_file_is_private_and_found_from_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = key_file("ns1")
    assert path == tmp_path / ".config" / "jobsuite" / "ns1.key"
    assert key_file("") == tmp_path / ".config" / "jobsuite" / "default.key"
    assert read_key_file(path) is None
    write_key_file(path, "jsk_saved")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert client_key(Settings(namespace="ns1")) == "jsk_saved"
    assert client_key(Settings(namespace="ns1", jobsuite_api_key="jsk_env")) == "jsk_env"
