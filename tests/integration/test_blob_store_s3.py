"""BLOB_STORE=s3://… end to end: the gateway (in this process, its real publisher) and a
resizer process share a bucket on the S3 server; a photo goes in, the resized one comes
back through the gateway, whole and as a byte range, and no blob touches a folder. Then the
layout of several hosts: S3 and PostgreSQL only, a render → mail pipeline through them."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from services.gateway.app import create_app
from shared.config import Settings
from shared.exit_codes import EXIT_CONFIG
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import closed_url
from tests.support.keys import admin_key, bearer
from tests.support.mailsink import start_mailsink
from tests.support.pdfs import open_pdf, text_of
from tests.support.postgres import query
from tests.support.s3 import S3Server


def _photo(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _wait_for_result(http: TestClient, job_id: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        # no audit here: until the manifest is in the bucket the answer is 503 (or 409)
        response = http.get(f"/jobs/{job_id}/result")
        if response.status_code == 200:
            return response.content
        last = f"{response.status_code} {response.text}"
        time.sleep(0.1)
    raise AssertionError(f"no result for {job_id} within {timeout}s: {last}")


def test_a_resize_job_runs_on_an_s3_blob_store_and_its_result_downloads(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.bucket()
    on_s3 = replace(s3_server.settings(settings, bucket), audit_url=closed_url())
    resizer = spawn("services.resizer", **s3_server.env(bucket))
    resizer.wait_logged("consuming")
    app = create_app(on_s3)
    headers = bearer(admin_key(on_s3.state_dir))
    with TestClient(app, base_url="http://localhost", headers=headers) as http:
        accepted = http.post(
            "/jobs/resize",
            files={"file": ("photo.jpg", _photo((1600, 1200)), "image/jpeg")},
            data={"width": "400"},
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        body = _wait_for_result(http, job_id)
        with Image.open(io.BytesIO(body)) as out:
            assert (out.format, out.size) == ("JPEG", (400, 300))

        ranged = http.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=100-299"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes 100-299/{len(body)}"
        assert ranged.content == body[100:300]
        tail = http.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=-10"})
        assert (tail.status_code, tail.content) == (206, body[-10:])

    listed = s3_server.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    names = sorted(o["Key"] for o in listed["Contents"])
    assert f"outputs/{job_id}/manifest.json" in names
    assert any(n.startswith(f"inputs/{job_id}/input.") for n in names)
    assert not settings.blob_dir.exists()  # nothing went to the folder store


def test_a_missing_bucket_stops_a_worker_at_start_with_one_line(
    broker: TestBroker, spawn: SpawnFn, s3_server: S3Server
) -> None:
    resizer = spawn("services.resizer", **s3_server.env("never-made"))
    assert resizer.wait(30) == EXIT_CONFIG
    assert "configuration error: BLOB_STORE: the bucket 'never-made' does not exist" in (
        resizer.tail()
    )


def test_a_render_then_mail_pipeline_runs_on_s3_and_postgres_with_no_folder(
    broker: TestBroker,
    spawn: SpawnFn,
    settings: Settings,
    s3_server: S3Server,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """The layout of several hosts: blobs in the bucket, every ledger in PostgreSQL, and no
    service writing to BLOB_DIR or STATE_DIR."""
    bucket = s3_server.bucket()
    shared = {**s3_server.env(bucket), "STATE_URL": postgres_url}
    sink = start_mailsink(spawn, tmp_path / "mail")
    for worker in (
        spawn("services.renderer", **shared),
        spawn("services.mailer", **shared, **sink.env()),
    ):
        worker.wait_logged("consuming")
    on_s3 = replace(
        s3_server.settings(settings, bucket), audit_url=closed_url(), state_url=postgres_url
    )
    headers = bearer(admin_key(on_s3.state_dir, postgres_url))
    with TestClient(create_app(on_s3), base_url="http://localhost", headers=headers) as http:
        accepted = http.post(
            "/jobs/render",
            json={
                "template": "document",
                "title": "Shared nothing",
                "data": {"blocks": ["From the bucket, by way of PostgreSQL."]},
                "then": {
                    "type": "mail",
                    "params": {"to": ["ada@example.com"], "subject": "Shared", "text": "PDF."},
                },
            },
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        pdf = _wait_for_result(http, job_id)
    assert "From the bucket, by way of PostgreSQL." in text_of(open_pdf(pdf))

    (message,) = sink.wait_for_messages(1, timeout=60)
    (attachment,) = sink.message(message["id"])["attachments"]
    assert sink.attachment(message["id"], attachment["name"]).content == pdf
    assert query(postgres_url, "SELECT id FROM accepted_jobs") == [(job_id,)]
    assert len(query(postgres_url, "SELECT job_id FROM sent")) == 1  # the send-once ledger
    assert not settings.blob_dir.exists() and not settings.state_dir.exists()
