"""A job the broker may or may not hold (sent, never confirmed) against a clean refusal, through
the gateway's app with a scripted publisher: what the 503 says, which inputs stay, and how a
retry with the same Idempotency-Key sends the very same job again."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.gateway.publisher import Outgoing
from shared.errors import BrokerUnavailable, PublishInDoubt
from tests.support.gateway import in_process_gateway


class ScriptedPublisher:
    """Fails the next publishes with `failures`, then confirms; keeps every job it was given."""

    connected = True
    last_error = ""

    def __init__(self) -> None:
        self.failures: list[Exception] = []
        self.jobs: list[dict[str, object]] = []

    def start(self) -> None: ...
    def close(self) -> None: ...

    def send(self, messages: Sequence[Outgoing]) -> Future[None]:
        done: Future[None] = Future()
        done.set_result(None)  # job.rejected events: not of interest here
        return done

    def publish(self, messages: Sequence[Outgoing], timeout: float = 15) -> None:
        self.jobs.append(json.loads(messages[0].body))
        if self.failures:
            raise self.failures.pop(0)


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


IN_DOUBT = PublishInDoubt("publish to jobs/render: sent, but not confirmed: blocked")
RENDER = {"template": "document", "data": {"blocks": ["in doubt"]}}


def inputs_kept(blob_dir: Path, job_id: str) -> bool:
    return any((blob_dir / "inputs" / job_id).glob("*"))


def test_an_in_doubt_job_says_so_and_the_same_key_sends_the_same_job_again(
    http: TestClient, publisher: ScriptedPublisher
) -> None:
    publisher.failures.append(IN_DOUBT)
    key = {"Idempotency-Key": "order-7"}
    first = http.post("/jobs/render", json=RENDER, headers=key)
    assert first.status_code == 503, first.text
    assert first.headers["Retry-After"]
    job_id = publisher.jobs[0]["id"]
    detail = first.json()["detail"]
    assert f"did not confirm job {job_id}" in detail and "may have been queued" in detail
    assert "same Idempotency-Key" in detail

    again = http.post("/jobs/render", json=RENDER, headers=key)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == job_id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [j["id"] for j in publisher.jobs] == [job_id, job_id]
    assert publisher.jobs[1] == publisher.jobs[0]  # the very same job, not a new one

    replay = http.post("/jobs/render", json=RENDER, headers=key)
    assert (replay.status_code, replay.json()["id"]) == (202, job_id)
    assert len(publisher.jobs) == 2  # confirmed now: answered from the ledger


def test_a_retry_that_fails_cleanly_leaves_the_job_in_doubt(
    http: TestClient, publisher: ScriptedPublisher
) -> None:
    publisher.failures += [IN_DOUBT, BrokerUnavailable("the broker is unreachable")]
    key = {"Idempotency-Key": "order-8"}
    assert http.post("/jobs/render", json=RENDER, headers=key).status_code == 503
    second = http.post("/jobs/render", json=RENDER, headers=key)
    assert second.status_code == 503
    assert "may have been queued" in second.json()["detail"]  # the first try still may have
    third = http.post("/jobs/render", json=RENDER, headers=key)
    assert third.status_code == 202
    assert len({j["id"] for j in publisher.jobs}) == 1


def test_without_a_key_an_in_doubt_job_keeps_its_inputs_and_warns_of_twice(
    http: TestClient, publisher: ScriptedPublisher, blob_dir: Path
) -> None:
    publisher.failures.append(IN_DOUBT)
    response = http.post("/jobs/resize", files={"file": ("a.png", png())}, data={"width": "8"})
    assert response.status_code == 503
    assert "may run it twice" in response.json()["detail"]
    job_id = str(publisher.jobs[0]["id"])
    assert inputs_kept(blob_dir, job_id)  # should the broker hold it, it still runs


def test_a_clean_refusal_keeps_nothing_and_frees_the_key(
    http: TestClient, publisher: ScriptedPublisher, blob_dir: Path
) -> None:
    publisher.failures.append(BrokerUnavailable("the broker is unreachable"))
    key = {"Idempotency-Key": "photo-1"}
    files = {"file": ("a.png", png())}
    refused = http.post("/jobs/resize", files=files, data={"width": "8"}, headers=key)
    assert refused.status_code == 503
    assert "nothing was kept" in refused.json()["detail"]
    first_id = str(publisher.jobs[0]["id"])
    assert not inputs_kept(blob_dir, first_id)
    accepted = http.post("/jobs/resize", files=files, data={"width": "8"}, headers=key)
    assert accepted.status_code == 202
    assert accepted.json()["id"] != first_id  # a new job: the first was never queued


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()
