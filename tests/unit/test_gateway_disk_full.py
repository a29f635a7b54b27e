"""The gateway on a full or read-only disk, and before a planted link: a 503 with Retry-After
naming the cause, `/readyz` not ready, a 202 once the broker has confirmed whatever fails
after, a 404 for a link; it keeps serving throughout."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.errors import PublishInDoubt, StateError
from shared.state.submissions import SqliteSubmissionLedger
from tests.support.full_disk import full_folder
from tests.support.gateway import in_process_gateway
from tests.unit.test_gateway_in_doubt import ScriptedPublisher, png

MAIL = {"to": ["someone@example.com"], "subject": "hi", "text": "hello"}


@pytest.fixture
def publisher() -> ScriptedPublisher:
    return ScriptedPublisher()


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def http(publisher: ScriptedPublisher, blob_dir: Path) -> Iterator[TestClient]:
    with in_process_gateway(publisher, blob_dir) as client:
        yield client


def test_an_upload_to_a_full_disk_is_a_503_with_retry_after_naming_the_cause(
    http: TestClient, blob_dir: Path
) -> None:
    assert http.get("/readyz").status_code == 200
    with full_folder(blob_dir / "inputs") as refused:
        response = http.post("/jobs/resize", files={"file": ("a.png", png())}, data={"width": "8"})
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) > 0
        detail = response.json()["detail"]
        assert errno.errorcode[refused] in detail and "nothing was kept" in detail
        assert not list((blob_dir / "inputs").rglob("*.png"))
    assert http.get("/healthz").status_code == 200  # still serving


def test_readyz_reports_a_blob_store_that_takes_no_writes(http: TestClient, blob_dir: Path) -> None:
    gateway = http.app.state.gateway  # type: ignore[attr-defined]
    with full_folder(blob_dir) as refused:
        gateway.blobs._writable.forget()  # no cached answer from before
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "blob store not writable"
        if refused == errno.ENOSPC:  # as root: a tmpfs, full (a chmod is not seen by root)
            assert gateway.blobs.check_writable().count("ENOSPC") == 1
    gateway.blobs._writable.forget()
    assert http.get("/readyz").status_code == 200


def test_a_confirmed_job_is_a_202_even_when_recording_it_fails(
    http: TestClient, publisher: ScriptedPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise StateError("cannot record an accepted job: database or disk is full")

    monkeypatch.setattr(SqliteSubmissionLedger, "accepted", disk_full)
    response = http.post("/jobs/mail", json=MAIL)  # no Idempotency-Key: a 500 means twice
    assert response.status_code == 202, response.text
    assert response.json()["id"] == publisher.jobs[0]["id"]
    keyed = http.post("/jobs/mail", json=MAIL, headers={"Idempotency-Key": "m-1"})
    assert keyed.status_code == 202, keyed.text


def test_an_in_doubt_job_whose_key_cannot_be_updated_is_still_a_503_naming_it(
    http: TestClient, publisher: ScriptedPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise StateError("cannot keep a job in doubt: database or disk is full")

    monkeypatch.setattr(SqliteSubmissionLedger, "in_doubt", disk_full)
    publisher.failures.append(PublishInDoubt("sent, but not confirmed: blocked"))
    response = http.post("/jobs/mail", json=MAIL, headers={"Idempotency-Key": "m-3"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    job_id = publisher.jobs[0]["id"]
    assert f"did not confirm job {job_id}" in response.json()["detail"]
    assert f"check GET /jobs/{job_id}" in response.json()["detail"]


def test_a_key_that_cannot_be_reserved_is_a_503_before_anything_is_sent(
    http: TestClient, publisher: ScriptedPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise StateError("cannot reserve an idempotency key: database or disk is full")

    monkeypatch.setattr(SqliteSubmissionLedger, "reserve", disk_full)
    response = http.post("/jobs/mail", json=MAIL, headers={"Idempotency-Key": "m-2"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "disk is full" in response.json()["detail"]
    assert publisher.jobs == []


def test_a_manifest_or_output_that_is_a_link_is_a_404(http: TestClient, blob_dir: Path) -> None:
    secret = blob_dir.parent / "passwd"
    secret.write_text("root:x:0:0\n")
    linked_manifest = "0b7b8f6e-3c3a-4f0e-9a57-1d6f1c1e9a01"
    (blob_dir / "outputs" / linked_manifest).mkdir(parents=True)
    (blob_dir / "outputs" / linked_manifest / "manifest.json").symlink_to(secret)
    linked_output = "0b7b8f6e-3c3a-4f0e-9a57-1d6f1c1e9a02"
    folder = blob_dir / "outputs" / linked_output
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(
        f'{{"outputs": ["outputs/{linked_output}/a.txt", "outputs/{linked_output}/b.txt"]}}'
    )
    (folder / "a.txt").symlink_to(secret)
    (folder / "b.txt").symlink_to(secret)
    for url in (
        f"/jobs/{linked_manifest}/result",
        f"/jobs/{linked_manifest}",
        f"/jobs/{linked_output}/result",
        f"/jobs/{linked_output}/result/a.txt",
    ):
        response = http.get(url)
        assert response.status_code == 404, (url, response.text)
        assert "is a symbolic link" in response.json()["detail"]
        assert "root:" not in response.text
    assert http.get("/healthz").status_code == 200
