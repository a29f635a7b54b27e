"""RESULT_REDIRECT: with an S3 blob store a result download is a 307 to a presigned URL the
client fetches from the store itself (ranges too); with a folder nothing changes."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from shared.blobs import open_blob_store, output_key
from shared.config import Settings
from tests.support.gateway import in_process_gateway
from tests.support.s3 import S3Server
from tests.unit.test_gateway_in_doubt import ScriptedPublisher

DATA = bytes(range(256)) * 40


def _finished_job(settings: Settings) -> str:
    job_id = str(uuid.uuid4())
    blobs = open_blob_store(settings)
    key = blobs.write_bytes(output_key(job_id, "photo.png"), DATA)
    blobs.write_manifest(job_id, [key])
    return job_id


def test_a_result_on_s3_is_a_redirect_to_a_presigned_url(
    s3_server: S3Server, tmp_path: Path
) -> None:
    fields = s3_server.env_fields(s3_server.bucket())
    job_id = _finished_job(Settings(**fields))  # type: ignore[arg-type]
    with in_process_gateway(
        ScriptedPublisher(), tmp_path / "blobs", result_redirect=True, **fields
    ) as client:
        answer = client.get(f"/jobs/{job_id}/result", follow_redirects=False)
        assert answer.status_code == 307, answer.text
        url = answer.headers["location"]
        assert url.startswith(s3_server.url) and "Signature" in url
        named = client.get(f"/jobs/{job_id}/result/photo.png", follow_redirects=False)
        assert named.status_code == 307
        gone = client.get(f"/jobs/{uuid.uuid4()}/result", follow_redirects=False)
        assert gone.status_code != 307
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == DATA
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["content-disposition"] == 'attachment; filename="photo.png"'
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert (ranged.status_code, ranged.content) == (206, DATA[10:20])


def test_without_result_redirect_the_gateway_streams_an_s3_result(
    s3_server: S3Server, tmp_path: Path
) -> None:
    fields = s3_server.env_fields(s3_server.bucket())
    job_id = _finished_job(Settings(**fields))  # type: ignore[arg-type]
    with in_process_gateway(ScriptedPublisher(), tmp_path / "blobs", **fields) as client:
        answer = client.get(f"/jobs/{job_id}/result", follow_redirects=False)
        assert (answer.status_code, answer.content) == (200, DATA)


def test_a_folder_store_streams_the_result_whatever_result_redirect_says(tmp_path: Path) -> None:
    job_id = _finished_job(Settings(blob_dir=tmp_path / "blobs"))
    with in_process_gateway(ScriptedPublisher(), tmp_path / "blobs", result_redirect=True) as c:
        answer = c.get(f"/jobs/{job_id}/result", follow_redirects=False)
        assert (answer.status_code, answer.content) == (200, DATA)
        ranged = c.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=10-19"})
        assert (ranged.status_code, ranged.content) == (206, DATA[10:20])
