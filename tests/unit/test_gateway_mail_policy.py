"""The gateway's mail policy and limits, through its app with a publisher that keeps what it
is given: 403 naming a recipient outside MAIL_ALLOWED_DOMAINS (in the job or a follow-up),
after every 422; duplicate and too many attachment ids; the follow-up depth."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.gateway.publisher import Outgoing
from tests.support.gateway import in_process_gateway

JOB_A = "11111111-1111-4111-8111-111111111111"


class KeepingPublisher:
    connected = True
    last_error = ""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def start(self) -> None: ...
    def close(self) -> None: ...

    def send(self, messages: Sequence[Outgoing]) -> Future[None]:
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def publish(self, messages: Sequence[Outgoing], timeout: float = 15) -> None:
        self.jobs.append(json.loads(messages[0].body))


@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[TestClient, KeepingPublisher]]:
    publisher = KeepingPublisher()
    with in_process_gateway(publisher, tmp_path / "blobs", max_attachments=3) as client:
        yield client, publisher


def mail(**params: Any) -> dict[str, Any]:
    return {"to": ["ann@example.org"], "subject": "s", "text": "t", **params}


@pytest.mark.parametrize(
    ("params", "field", "address"),
    [
        (mail(to=["ann@example.org", "eve@gmail.com"]), "to.1", "eve@gmail.com"),
        (mail(cc=["Eve <eve@evil.example.co.uk>"]), "cc.0", "eve@evil.example.co.uk"),
        (mail(bcc=["root@127.0.0.1"]), "bcc.0", "root@127.0.0.1"),
        (mail(to=["eve@EXAMPLE.COM.evil.net"]), "to.0", "eve@EXAMPLE.COM.evil.net"),
    ],
)
def test_a_recipient_outside_the_allowed_domains_is_403_naming_it(
    http: tuple[TestClient, KeepingPublisher], params: dict[str, Any], field: str, address: str
) -> None:
    client, publisher = http
    answer = client.post("/jobs/mail", json=params)
    assert answer.status_code == 403, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"{field}: mail to {address} is not allowed"), detail
    assert "not a reserved test domain" in detail
    assert publisher.jobs == []
    assert client.post("/jobs/mail", json=mail()).status_code == 202


def test_a_refused_recipient_in_a_follow_up_is_403_too(
    http: tuple[TestClient, KeepingPublisher],
) -> None:
    client, publisher = http
    then = {"type": "mail", "params": mail()}
    then = {"type": "render", "params": {"template": "document"}, "then": then}
    then["then"]["params"]["cc"] = ["eve@gmail.com"]
    answer = client.post("/jobs/render", json={"template": "document", "then": then})
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"].startswith("then.then.params.cc.0: mail to eve@gmail.com")

    image = io.BytesIO()
    Image.new("RGB", (8, 8)).save(image, "PNG")
    upload = client.post(
        "/jobs/resize",
        files={"file": ("a.png", image.getvalue(), "image/png")},
        data={"width": "4", "then": json.dumps({"type": "mail", "params": mail(to=["x@y.io"])})},
    )
    assert upload.status_code == 403, upload.text
    assert "mail to x@y.io is not allowed" in upload.json()["detail"]
    assert publisher.jobs == []
    assert not list((client.app.state.gateway.settings.blob_dir / "inputs").glob("*/*"))


def test_a_422_comes_before_the_403(http: tuple[TestClient, KeepingPublisher]) -> None:
    client, _ = http
    both = mail(to=["eve@gmail.com"], attachments=[JOB_A, JOB_A])
    answer = client.post("/jobs/mail", json=both)
    assert answer.status_code == 422, answer.text


def test_duplicate_attachment_ids_are_422_naming_the_id(
    http: tuple[TestClient, KeepingPublisher],
) -> None:
    client, publisher = http
    answer = client.post("/jobs/mail", json=mail(attachments=[JOB_A, JOB_A]))
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "attachments", 1]
    assert error["type"] == "duplicate_attachment"
    assert JOB_A in error["msg"] and "listed twice" in error["msg"]
    assert publisher.jobs == []


def test_more_attachment_ids_than_max_attachments_are_422(
    http: tuple[TestClient, KeepingPublisher],
) -> None:
    client, _ = http
    ids = [f"{n}1111111-1111-4111-8111-111111111111" for n in range(4)]
    answer = client.post("/jobs/mail", json=mail(attachments=ids))
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "attachments"] and error["type"] == "too_many_attachments"
    assert "4 attachments, over the limit of 3 (MAX_ATTACHMENTS)" in error["msg"]


def test_a_chain_of_six_follow_ups_is_422(http: tuple[TestClient, KeepingPublisher]) -> None:
    client, _ = http
    then: dict[str, Any] | None = None
    for _ in range(6):
        then = {"type": "mail", "params": mail(), **({"then": then} if then else {})}
    answer = client.post("/jobs/mail", json={**mail(), "then": then})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["type"] == "too_many_follow_ups"
    assert "a chain of 6 follow-up jobs, over the limit of 5" in error["msg"]
    then = then["then"]  # type: ignore[index]
    assert client.post("/jobs/mail", json={**mail(), "then": then}).status_code == 202


def test_allowed_domains_replace_the_reserved_names(tmp_path: Path) -> None:
    publisher = KeepingPublisher()
    allowed = ("corp.io", "*.corp.io")
    with in_process_gateway(publisher, tmp_path / "blobs", mail_allowed_domains=allowed) as client:
        assert client.post("/jobs/mail", json=mail(to=["a@eu.corp.io"])).status_code == 202
        assert client.post("/jobs/mail", json=mail()).status_code == 403
    assert len(publisher.jobs) == 1
