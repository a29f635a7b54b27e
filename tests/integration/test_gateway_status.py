"""`GET /jobs/{id}` and `GET /jobs/{id}/result` of the gateway process, with a stand-in for
the audit read API answering exact JobRecords, and outputs written as a worker would."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.blobs import FolderBlobStore, output_key
from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.gateway import RunningGateway, start_gateway


@pytest.fixture
def audit(fake_audit: JsonServer) -> JsonServer:
    return fake_audit


@pytest.fixture
def gateway(gateway_with_fake_audit: RunningGateway) -> RunningGateway:
    return gateway_with_fake_audit


def finish(settings: Settings, job_id: str, outputs: dict[str, bytes]) -> list[str]:
    """Write outputs and the manifest the way the worker runner does."""
    blobs = FolderBlobStore(settings.blob_dir)
    keys = [blobs.write_bytes(output_key(job_id, name), data) for name, data in outputs.items()]
    blobs.write_manifest(job_id, keys)
    return keys


def test_status_is_the_audit_record(gateway: RunningGateway, audit: JsonServer) -> None:
    job_id = str(uuid.uuid4())
    record = {
        "id": job_id,
        "type": "render",
        "status": "failed",
        "attempts": 3,
        "error": {"kind": "template", "message": "unknown field 'colour'"},
    }
    audit.routes[f"/jobs/{job_id}"] = (200, record)
    with gateway.client() as http:
        response = http.get(f"/jobs/{job_id}")
        result = http.get(f"/jobs/{job_id}/result")
    assert response.status_code == 200
    assert {k: response.json()[k] for k in record} == record
    assert result.status_code == 409
    assert "failed: unknown field 'colour'" in result.json()["detail"]


def test_a_job_audit_has_not_seen_yet_is_submitted_and_an_unknown_one_404(
    gateway: RunningGateway,
) -> None:
    with gateway.client() as http:
        job_id = http.post("/jobs/render", json={"template": "document"}).json()["id"]
        status = http.get(f"/jobs/{job_id}")
        result = http.get(f"/jobs/{job_id}/result")
        unknown = http.get(f"/jobs/{uuid.uuid4()}")
        malformed = http.get("/jobs/not-a-job-id")
    assert status.status_code == 200
    assert (status.json()["status"], status.json()["type"]) == ("submitted", "render")
    assert result.status_code == 409
    assert "not finished yet (status: submitted)" in result.json()["detail"]
    assert unknown.status_code == 404
    assert malformed.status_code == 422


def test_one_output_is_the_file_itself(gateway: RunningGateway, settings: Settings) -> None:
    job_id = str(uuid.uuid4())
    finish(settings, job_id, {"invoice.pdf": b"%PDF-1.7 fake"})
    with gateway.client() as http:
        response = http.get(f"/jobs/{job_id}/result")
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 fake"
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="invoice.pdf"' in response.headers["content-disposition"]


def test_several_outputs_are_a_list_of_links(gateway: RunningGateway, settings: Settings) -> None:
    job_id = str(uuid.uuid4())
    finish(settings, job_id, {"300x200.jpg": b"jpeg-1", "100x100.jpg": b"jpeg-22"})
    with gateway.client() as http:
        listing = http.get(f"/jobs/{job_id}/result")
        second = http.get(f"/jobs/{job_id}/result/100x100.jpg")
        missing = http.get(f"/jobs/{job_id}/result/..%2Fmanifest.json")
    assert listing.status_code == 200
    assert listing.json()["outputs"] == [
        {
            "name": "300x200.jpg",
            "url": f"/jobs/{job_id}/result/300x200.jpg",
            "size": 6,
            "content_type": "image/jpeg",
        },
        {
            "name": "100x100.jpg",
            "url": f"/jobs/{job_id}/result/100x100.jpg",
            "size": 7,
            "content_type": "image/jpeg",
        },
    ]
    assert second.content == b"jpeg-22"
    assert missing.status_code == 404


def test_without_audit_a_finished_job_still_answers_from_its_manifest(
    broker: TestBroker, spawn: SpawnFn, settings: Settings
) -> None:
    gateway = start_gateway(spawn, settings)  # audit unreachable
    with gateway.client() as http:
        job_id = http.post("/jobs/render", json={"template": "document"}).json()["id"]
        before = http.get(f"/jobs/{job_id}")
        (key,) = finish(settings, job_id, {"doc.pdf": b"%PDF"})
        after = http.get(f"/jobs/{job_id}")
    assert before.status_code == 503
    assert "audit service is unreachable" in before.json()["detail"]
    assert after.status_code == 200
    body = after.json()
    assert (body["status"], body["type"], body["outputs"]) == ("succeeded", "render", [key])
    assert json.loads(json.dumps(body))["id"] == job_id
