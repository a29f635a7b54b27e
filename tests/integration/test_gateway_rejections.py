"""Every kind of bad submission gets its status code, names what is wrong, leaves nothing in
the blob store or on the queues, and is told to the audit log as a `job.rejected` event."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from shared.config import Settings
from tests.conftest import SpawnFn, with_settings
from tests.support.broker import EventWatcher, TestBroker
from tests.support.gateway import RunningGateway, start_gateway

MAX_UPLOAD = 200_000
MAIL = {"to": ["ann@example.org"], "subject": "Hello", "text": "hi"}


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "navy").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def gateway(broker: TestBroker, spawn: SpawnFn, settings: Settings) -> RunningGateway:
    limited = with_settings(settings, max_upload_bytes=MAX_UPLOAD, max_recipients=5)
    return start_gateway(
        spawn,
        limited,
        MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        MAX_RECIPIENTS="5",
        MAX_IMAGE_PIXELS="1000000",
    )


class Refusals:
    """Posts a bad request and checks its answer, its event, and that nothing was kept."""

    def __init__(self, http: httpx.Client, events: EventWatcher, broker: TestBroker) -> None:
        self.http = http
        self.events = events
        self.broker = broker
        self.count = 0

    def check(self, status: int, kind: str, says: str, path: str, **request: Any) -> dict[str, Any]:
        response = self.http.post(path, **request)
        assert response.status_code == status, response.text
        assert says in json.dumps(response.json()["detail"]), response.text
        self.count += 1
        self.broker.wait_until(
            lambda: len(self.rejections()) >= self.count, 5, f"job.rejected #{self.count}"
        )
        event = self.rejections()[-1]
        assert event["type"] == path.rsplit("/", 1)[-1]
        assert event["error"]["kind"] == kind
        assert says in event["error"]["message"]
        return event

    def rejections(self) -> list[dict[str, Any]]:
        return [e for e in self.events.poll() if e["event"] == "job.rejected"]


@pytest.fixture
def refusals(gateway: RunningGateway, broker: TestBroker) -> Iterator[Refusals]:
    events = broker.events()
    with gateway.client() as http:
        yield Refusals(http, events, broker)
    for job_type in ("resize", "render", "mail"):
        assert broker.depth(broker.names.task_queue(job_type)) == 0
    assert not [e for e in events.poll() if e["event"] == "job.submitted"]


def test_bad_uploads_are_413_415_and_422(refusals: Refusals, settings: Settings) -> None:
    image = {"file": ("p.png", png(), "image/png")}
    big = {"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_UPLOAD + 70_000))}
    refusals.check(413, "too_large", "MAX_UPLOAD_BYTES", "/jobs/resize", files=big, data={})

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        boundary = b"--b0undary"
        yield (
            boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        )
        for _ in range(40):
            yield b"\0" * 8192
        yield b"\r\n" + boundary + b"--\r\n"

    refusals.check(
        413,
        "too_large",
        "MAX_UPLOAD_BYTES",
        "/jobs/resize",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    pdf = {"file": ("photo.jpg", b"%PDF-1.4 pretending", "image/jpeg")}
    refusals.check(415, "unsupported_media_type", "not an allowed image", "/jobs/resize",
                   files=pdf, data={"width": "10"})  # fmt: skip
    huge = {"file": ("huge.png", png((1200, 1000)), "image/png")}
    refusals.check(422, "too_many_pixels", "MAX_IMAGE_PIXELS", "/jobs/resize", files=huge,
                   data={"width": "10"})  # fmt: skip
    refusals.check(422, "invalid", "colour", "/jobs/resize", files=image,
                   data={"width": "10", "colour": "red"})  # fmt: skip
    refusals.check(422, "invalid", "width", "/jobs/resize", files=image, data={"width": "wide"})
    refusals.check(422, "invalid", "fit", "/jobs/resize", files=image,
                   data={"width": "10", "fit": "stretch"})  # fmt: skip
    refusals.check(422, "invalid", "give width, height or sizes", "/jobs/resize", files=image)
    event = refusals.check(422, "invalid", "must be WIDTHxHEIGHT", "/jobs/resize", files=image,
                           data={"sizes": ["10x10", "big"]})  # fmt: skip
    assert event["error"]["message"].startswith("body.sizes.1: ")
    refusals.check(422, "invalid", "then", "/jobs/resize", files=image,
                   data={"width": "10", "then": "{not json"})  # fmt: skip
    refusals.check(422, "invalid", "file", "/jobs/resize", data={"width": "10"})
    assert list(settings.blob_dir.glob("inputs/*")) == []


def test_mail_header_injection_and_smuggled_recipients_are_422(refusals: Refusals) -> None:
    injected = {**MAIL, "subject": "Hi\r\nBcc: everyone@example.org"}
    refusals.check(422, "invalid", "line breaks", "/jobs/mail", json=injected)
    refusals.check(422, "invalid", "one e-mail address", "/jobs/mail",
                   json={**MAIL, "to": ["ann@example.org, eve@example.org"]})  # fmt: skip
    smuggled = {**MAIL, "cc": ["ann@example.org\nBcc: eve@example.org"]}
    event = refusals.check(422, "invalid", "line breaks", "/jobs/mail", json=smuggled)
    assert event["error"]["message"].startswith("body.cc.0: ")
    crowd = [f"r{i}@example.org" for i in range(4)]
    refusals.check(422, "too_many_recipients", "too many recipients: 6, at most 5", "/jobs/mail",
                   json={**MAIL, "cc": crowd, "bcc": ["x@example.org"]})  # fmt: skip
    refusals.check(422, "invalid", "priority", "/jobs/mail", json={**MAIL, "priority": "high"})
    refusals.check(422, "invalid", "give text, html or both", "/jobs/mail",
                   json={"to": MAIL["to"], "subject": "no body"})  # fmt: skip
    event = refusals.check(422, "invalid", "id of an earlier job", "/jobs/mail",
                           json={**MAIL, "attachments": ["../../etc/passwd"]})  # fmt: skip
    assert event["error"]["message"].startswith("body.attachments.0: ")


def test_bad_render_requests_name_the_field(refusals: Refusals) -> None:
    refusals.check(422, "invalid", "template", "/jobs/render", json={"template": "poster"})
    refusals.check(422, "invalid", "buyer", "/jobs/render",
                   json={"template": "invoice", "data": {"seller": {"name": "A"}}})  # fmt: skip
    refusals.check(422, "invalid", "page_size", "/jobs/render",
                   json={"template": "document", "page_size": "A3"})  # fmt: skip
    refusals.check(422, "invalid", "JSON decode error", "/jobs/render", content=b"{oops",
                   headers={"Content-Type": "application/json"})  # fmt: skip
    bad_follow_up = {"type": "mail", "params": {**MAIL, "to": ["a@b.c; d@e.f"]}}
    event = refusals.check(422, "invalid", "one e-mail address", "/jobs/render",
                           json={"template": "document", "then": bad_follow_up})  # fmt: skip
    assert event["error"]["message"].startswith("body.then.params.to.0: ")


def test_a_reused_idempotency_key_with_another_body_is_409(refusals: Refusals) -> None:
    key = {"Idempotency-Key": "invoice-7"}
    first = refusals.http.post("/jobs/mail", json=MAIL, headers=key)
    assert first.status_code == 202
    refusals.broker.drain(refusals.broker.names.task_queue("mail"))
    refusals.events.poll().clear()
    refusals.check(409, "idempotency_conflict", "different request", "/jobs/mail",
                   json={**MAIL, "text": "changed"}, headers=key)  # fmt: skip
