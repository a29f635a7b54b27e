"""`DELETE /jobs/{id}` of the gateway (in process, its real publisher on the test's broker
namespace, a stand-in audit read API, the folder blob store): a finished job's blobs go, its
result is then 410, and `job.deleted` is on the events exchange for the audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.blobs import FolderBlobStore, input_key, output_key
from shared.config import Settings
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.gateway import in_process_gateway
from tests.support.keys import bearer, make_key


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "gw" / "blobs"


@pytest.fixture
def gateway(
    broker: TestBroker, settings: Settings, fake_audit: JsonServer, blob_dir: Path
) -> Iterator[TestClient]:
    with in_process_gateway(
        None,
        blob_dir,
        audit_url=fake_audit.url,
        amqp_url=settings.amqp_url,
        namespace=settings.namespace,
        max_deliveries=settings.max_deliveries,  # the topology the broker fixture declared
        retry_delays_ms=settings.retry_delays_ms,
    ) as client:
        yield client


def key_of(blob_dir: Path, name: str) -> dict[str, str]:
    return bearer(make_key(blob_dir.parent / "state", name))


def finished(
    blob_dir: Path, audit: JsonServer, client: str, status: str = "succeeded", **record: Any
) -> str:
    """A job of `client` with an input and outputs stored as a worker leaves them, and the
    audit's record of it."""
    job_id = str(uuid.uuid4())
    blobs = FolderBlobStore(blob_dir)
    blobs.write_bytes(input_key(job_id, "photo.png"), b"png")
    outputs = [blobs.write_bytes(output_key(job_id, f"photo-{w}.png"), b"out") for w in (1, 2)]
    if status == "succeeded":
        blobs.write_manifest(job_id, outputs, client)
    audit.routes[f"/jobs/{job_id}"] = (
        200,
        {"id": job_id, "type": "resize", "status": status, "client": client, **record},
    )
    return job_id


def blobs_of(blob_dir: Path, job_id: str) -> list[str]:
    blobs = FolderBlobStore(blob_dir)
    return blobs.list(f"inputs/{job_id}") + blobs.list(f"outputs/{job_id}")


def test_the_owner_deletes_a_finished_job_and_its_result_is_gone(
    gateway: TestClient, broker: TestBroker, fake_audit: JsonServer, blob_dir: Path
) -> None:
    events = broker.events()
    ann = key_of(blob_dir, "ann")
    job_id = finished(blob_dir, fake_audit, "ann")
    assert gateway.get(f"/jobs/{job_id}/result", headers=ann).status_code == 200

    deleted = gateway.delete(f"/jobs/{job_id}", headers=ann)
    result = gateway.get(f"/jobs/{job_id}/result", headers=ann)
    one_file = gateway.get(f"/jobs/{job_id}/result/photo-1.png", headers=ann)
    again = gateway.delete(f"/jobs/{job_id}", headers=ann)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert blobs_of(blob_dir, job_id) == []
    assert result.status_code == 410
    assert "gone from the blob store" in result.json()["detail"]
    assert one_file.status_code == 410
    assert again.status_code == 204  # the audit still knows the job
    recorded = events.wait_for(job_id, "job.deleted", count=2)
    assert {(e["client"], e["service"], e["type"]) for e in recorded} == {
        ("ann", "gateway", "resize")
    }


def test_another_clients_job_is_not_found_and_keeps_its_blobs(
    gateway: TestClient, broker: TestBroker, fake_audit: JsonServer, blob_dir: Path
) -> None:
    events = broker.events()
    job_id = finished(blob_dir, fake_audit, "ann")
    bob = key_of(blob_dir, "bob")

    deleted = gateway.delete(f"/jobs/{job_id}", headers=bob)
    looked_up = gateway.get(f"/jobs/{job_id}", headers=bob)
    missing = gateway.delete(f"/jobs/{uuid.uuid4()}", headers=bob)

    assert deleted.status_code == looked_up.status_code == 404
    assert deleted.json() == looked_up.json()
    assert deleted.json()["detail"] == f"no job {job_id}"
    assert missing.status_code == 404
    assert len(blobs_of(blob_dir, job_id)) == 4  # input, two outputs, manifest
    assert events.of(job_id) == []


@pytest.mark.parametrize("status", ["submitted", "started", "retrying"])
def test_a_job_that_may_still_run_is_not_deleted(
    gateway: TestClient, fake_audit: JsonServer, blob_dir: Path, status: str
) -> None:
    ann = key_of(blob_dir, "ann")
    job_id = finished(blob_dir, fake_audit, "ann", status=status)

    answer = gateway.delete(f"/jobs/{job_id}", headers=ann)

    assert answer.status_code == 409
    assert f"has not finished (status: {status})" in answer.json()["detail"]
    assert len(blobs_of(blob_dir, job_id)) == 3  # input and two outputs (no manifest yet)


def test_an_admin_deletes_a_dead_job_of_any_client(
    gateway: TestClient, broker: TestBroker, fake_audit: JsonServer, blob_dir: Path
) -> None:
    events = broker.events()
    job_id = finished(blob_dir, fake_audit, "ann", status="dead")

    answer = gateway.delete(f"/jobs/{job_id}")  # the test admin key

    assert answer.status_code == 204
    assert blobs_of(blob_dir, job_id) == []
    assert events.wait_for(job_id, "job.deleted")[0]["client"] == "ann"


def test_the_result_of_a_job_the_audit_saw_deleted_says_when(
    gateway: TestClient, fake_audit: JsonServer, blob_dir: Path
) -> None:
    job_id = finished(blob_dir, fake_audit, "ann", deleted_at="2026-03-01T12:00:00Z")
    FolderBlobStore(blob_dir).delete_prefix(f"outputs/{job_id}")

    answer = gateway.get(f"/jobs/{job_id}/result")

    assert answer.status_code == 410
    assert "were deleted at 2026-03-01T12:00:00+00:00" in answer.json()["detail"]
