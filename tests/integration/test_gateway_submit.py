"""Submitting jobs to the gateway process, checked on the real broker: what lands on the
queue, with which properties, which events, what is kept in the blob store."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import RunningGateway, start_gateway


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "teal").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def gateway(broker: TestBroker, spawn: SpawnFn, settings: Settings) -> RunningGateway:
    return start_gateway(spawn, settings)


def test_a_resize_upload_is_stored_then_queued_with_the_right_properties(
    gateway: RunningGateway, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    with gateway.client() as http:
        response = http.post(
            "/jobs/resize",
            files={"file": ("holiday photo.png", png_bytes(), "image/png")},
            data={"width": "32", "format": "webp", "quality": "70"},
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status_url"] == f"/jobs/{job_id}"
    assert response.headers["location"] == f"/jobs/{job_id}"

    ((props, body),) = broker.drain(broker.names.task_queue("resize"))
    job = json.loads(body)
    assert (props.message_id, props.type) == (job_id, "resize")
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.app_id.startswith(f"{settings.namespace}.gateway:")
    assert job["params"] == {
        "width": 32,
        "fit": "contain",
        "format": "webp",
        "quality": 70,
        "sizes": [],
    }
    assert job["inputs"] == [f"inputs/{job_id}/input.png"]
    assert (settings.blob_dir / job["inputs"][0]).read_bytes() == png_bytes()
    submitted = events.wait_for(job_id, "job.submitted")[0]
    assert (submitted["service"], submitted["type"]) == ("gateway", "resize")


def test_a_thumbnail_set_and_a_follow_up_travel_with_the_job(
    gateway: RunningGateway, broker: TestBroker
) -> None:
    then = {"type": "mail", "params": {"to": ["ops@example.org"], "subject": "thumbs", "text": "x"}}
    with gateway.client() as http:
        response = http.post(
            "/jobs/resize",
            files={"file": ("p.png", png_bytes(), "image/png")},
            data={"sizes": ["300x200", "100", "x50"], "fit": "cover", "then": json.dumps(then)},
        )
    assert response.status_code == 202, response.text
    ((_props, body),) = broker.drain(broker.names.task_queue("resize"))
    job = json.loads(body)
    assert job["params"]["sizes"] == [{"width": 300, "height": 200}, {"width": 100}, {"height": 50}]
    assert job["then"]["type"] == "mail"
    assert job["then"]["params"]["to"] == ["ops@example.org"]


def test_render_and_mail_jobs_are_queued_on_their_own_queues(
    gateway: RunningGateway, broker: TestBroker
) -> None:
    invoice = {
        "seller": {"name": "Acme"},
        "buyer": {"name": "Bob", "address": "1 Road"},
        "items": [{"description": "Bolt", "quantity": "3", "unit_price": "1.50"}],
        "number": "2024-7",
        "issue_date": "2024-01-31",
        "due_date": "2024-02-29",
    }
    with gateway.client() as http:
        render = http.post("/jobs/render", json={"template": "invoice", "data": invoice})
        mail = http.post(
            "/jobs/mail",
            json={
                "to": ["Ann Example <ann@example.org>"],
                "cc": ["bob@example.org"],
                "subject": "Your invoice",
                "text": "attached",
                "attachments": [render.json()["id"]],
            },
        )
    assert (render.status_code, mail.status_code) == (202, 202), mail.text
    ((_, render_body),) = broker.drain(broker.names.task_queue("render"))
    ((_, mail_body),) = broker.drain(broker.names.task_queue("mail"))
    assert json.loads(render_body)["params"]["data"] == invoice
    mail_job = json.loads(mail_body)
    assert mail_job["params"]["attachments"] == [render.json()["id"]]
    assert mail_job["inputs"] == []


def test_the_same_idempotency_key_and_body_gives_the_same_job_once(
    gateway: RunningGateway, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    headers = {"Idempotency-Key": "order-42"}
    upload = {"file": ("p.png", png_bytes(), "image/png")}
    with gateway.client() as http:
        first = http.post("/jobs/resize", files=upload, data={"width": "10"}, headers=headers)
        again = http.post("/jobs/resize", files=upload, data={"width": "10"}, headers=headers)
        other = http.post("/jobs/resize", files=upload, data={"width": "11"}, headers=headers)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 409
    assert "different request" in other.json()["detail"]
    assert len(broker.drain(broker.names.task_queue("resize"))) == 1
    # Only the accepted job's input is kept: the replay's and the conflict's copies are gone.
    assert sorted(p.name for p in (settings.blob_dir / "inputs").iterdir()) == [first.json()["id"]]
    broker.wait_until(
        lambda: any(e["event"] == "job.rejected" for e in events.poll()), 5, "job.rejected"
    )
    rejected = [e for e in events.poll() if e["event"] == "job.rejected"]
    assert [e["error"]["kind"] for e in rejected] == ["idempotency_conflict"]
    assert len([e for e in events.poll() if e["event"] == "job.submitted"]) == 1


def test_without_audit_an_unfinished_job_is_a_clear_503_not_a_guess(
    gateway: RunningGateway,
) -> None:
    with gateway.client() as http:
        job_id = http.post("/jobs/render", json={"template": "document"}).json()["id"]
        status = http.get(f"/jobs/{job_id}")
        result = http.get(f"/jobs/{job_id}/result")
    # Audit is unreachable in this test: only the gateway's own record can answer.
    assert status.status_code == 503
    assert "audit service is unreachable" in status.json()["detail"]
    assert status.headers["retry-after"]
    assert result.status_code == 503
