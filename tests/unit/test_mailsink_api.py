"""The sink's HTTP view: messages as JSON, raw, attachments, an escaped HTML page, chaos
(only when MAILSINK_CHAOS_API is on), HTTP Basic (MAILSINK_UI_AUTH)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.mailsink.api import create_app
from services.mailsink.auth import Credentials, credentials_from
from services.mailsink.chaos import Chaos
from services.mailsink.store import MailStore
from shared.config import Settings

PDF = b"%PDF-1.4\n" + bytes(range(256))


def mail(subject: str = "Invoice 7", message_id: str = "<m1@test>") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Cc"] = "Jobs <jobs@x.com>", "Ann <ann@y.com>", "cc@y.com"
    m["Subject"], m["Message-ID"] = subject, message_id
    m["Date"] = "Mon, 06 May 2024 07:08:09 +0000"
    m.set_content("Hello Ann")
    m.add_alternative("<p>Hello <b>Ann</b></p>", subtype="html")
    m.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    trace = b"X-Mailsink-Envelope-From: jobs@x.com\r\nX-Mailsink-Envelope-To: ann@y.com\r\n"
    return trace + m.as_bytes()


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MailStore(tmp_path / "mail")


@pytest.fixture
def chaos() -> Chaos:
    return Chaos()


@pytest.fixture
def client(store: MailStore, chaos: Chaos) -> TestClient:
    return TestClient(create_app(store, chaos, chaos_api=True), base_url="http://localhost")


def test_messages_are_listed_with_their_summaries(client: TestClient, store: MailStore) -> None:
    key = store.deliver(mail()).key
    (summary,) = client.get("/messages").json()
    assert summary == {
        "id": key,
        "message_id": "<m1@test>",
        "from": "Jobs <jobs@x.com>",
        "to": ["Ann <ann@y.com>"],
        "cc": ["cc@y.com"],
        "envelope_to": ["ann@y.com"],
        "subject": "Invoice 7",
        "date": "Mon, 06 May 2024 07:08:09 +0000",
        "received": summary["received"],
        "attachments": ["invoice.pdf"],
        "read": False,
        "size": len(mail()),
    }


def test_a_message_shows_its_headers_bodies_and_attachments(
    client: TestClient, store: MailStore
) -> None:
    key = store.deliver(mail()).key
    detail = client.get(f"/messages/{key}").json()
    assert detail["text"].strip() == "Hello Ann"
    assert detail["html"].strip() == "<p>Hello <b>Ann</b></p>"
    assert detail["attachments"] == [
        {"name": "invoice.pdf", "content_type": "application/pdf", "size": len(PDF)}
    ]
    assert ["Subject", "Invoice 7"] in detail["headers"]


def test_raw_and_attachment_bytes_are_served_as_stored(
    client: TestClient, store: MailStore
) -> None:
    key = store.deliver(mail()).key
    raw = client.get(f"/messages/{key}/raw")
    assert raw.headers["content-type"] == "message/rfc822"
    assert b"Message-ID: <m1@test>" in raw.content
    attachment = client.get(f"/messages/{key}/attachments/invoice.pdf")
    assert attachment.content == PDF
    assert attachment.headers["content-type"] == "application/pdf"
    assert attachment.headers["content-disposition"] == "attachment; filename*=utf-8''invoice.pdf"
    assert attachment.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    ["/messages/nope", "/messages/nope/raw", "/messages/nope/attachments/a.pdf"],
)
def test_unknown_messages_are_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_an_unknown_attachment_is_404(client: TestClient, store: MailStore) -> None:
    key = store.deliver(mail()).key
    response = client.get(f"/messages/{key}/attachments/other.pdf")
    assert response.status_code == 404
    assert "other.pdf" in response.json()["detail"]


def test_the_html_page_escapes_everything_from_the_mail(
    client: TestClient, store: MailStore
) -> None:
    store.deliver(mail(subject="<script>alert(1)</script> & more"))
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page.text
    assert "Jobs &lt;jobs@x.com&gt;" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_the_html_page_says_when_there_is_no_mail(client: TestClient) -> None:
    assert "No messages yet." in client.get("/").text


def test_the_html_page_counts_in_the_right_number(client: TestClient, store: MailStore) -> None:
    assert "0 messages, 0 unread" in client.get("/").text
    store.deliver(mail())
    one = client.get("/").text
    assert "<title>mailsink: 1 message, 1 unread</title>" in one and "1 messages" not in one


def test_healthz_counts_messages(client: TestClient, store: MailStore) -> None:
    store.deliver(mail())
    assert client.get("/healthz").json() == {"status": "ok", "messages": 1}


def test_chaos_is_set_read_and_cleared_over_http(client: TestClient, chaos: Chaos) -> None:
    assert client.get("/chaos").json() == {"active": False}
    set_ = client.post("/chaos", json={"code": 451, "times": 2, "on": "rcpt"})
    assert set_.json() == {"active": True, "code": 451, "times": 2, "on": "rcpt", "left": 2}
    assert chaos.take() is not None
    assert client.get("/chaos").json()["left"] == 1
    assert client.delete("/chaos").json() == {"active": False}
    assert chaos.take() is None


@pytest.mark.parametrize(
    "body",
    [
        {"code": 250},
        {"code": 700},
        {"code": 451, "times": 0},
        {"code": 451, "on": "quit"},
        {"code": 451, "extra": 1},
        {},
    ],
)
def test_a_bad_chaos_request_is_422(client: TestClient, body: dict[str, object]) -> None:
    assert client.post("/chaos", json=body).status_code == 422


def test_without_the_chaos_api_every_chaos_route_is_404(store: MailStore, chaos: Chaos) -> None:
    client = TestClient(create_app(store, chaos), base_url="http://localhost")
    assert client.get("/chaos").status_code == 404
    assert client.post("/chaos", json={"code": 451}).status_code in (404, 405)
    assert client.delete("/chaos").status_code in (404, 405)
    assert chaos.take() is None
    assert client.get("/messages").status_code == 200


CREDENTIALS = Credentials.parse("ops:s3cret:with-colon")


@pytest.fixture
def guarded(store: MailStore, chaos: Chaos) -> TestClient:
    return TestClient(
        create_app(store, chaos, credentials=CREDENTIALS, chaos_api=True),
        base_url="http://localhost",
    )


@pytest.mark.parametrize(
    "path", ["/", "/messages", "/messages/x", "/messages/x/raw", "/docs", "/openapi.json", "/chaos"]
)
def test_with_ui_auth_every_route_but_healthz_is_401_without_credentials(
    guarded: TestClient, path: str
) -> None:
    refused = guarded.get(path)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Basic realm="jobsuite mailsink"')
    assert guarded.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "auth",
    [
        ("ops", "wrong"),
        ("other", "s3cret:with-colon"),
        ("ops", "s3cret"),
        ("ops", "s3cret:with-colon2"),
        ("", ""),
    ],
)
def test_wrong_credentials_are_401(guarded: TestClient, auth: tuple[str, str]) -> None:
    assert guarded.get("/messages", auth=auth).status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Basic", "Basic !!!", "Basic b3Bz", "Digest x", "basic"]
)
def test_malformed_authorization_is_401(guarded: TestClient, header: str) -> None:
    assert guarded.get("/messages", headers={"Authorization": header}).status_code == 401


def test_the_right_credentials_open_every_route(guarded: TestClient, store: MailStore) -> None:
    key = store.deliver(mail()).key
    auth = ("ops", "s3cret:with-colon")
    assert guarded.get("/messages", auth=auth).json()[0]["id"] == key
    assert guarded.get(f"/messages/{key}/raw", auth=auth).status_code == 200
    assert guarded.get("/", auth=auth).status_code == 200
    assert guarded.post("/chaos", json={"code": 451}, auth=auth).status_code == 200


def test_credentials_come_from_the_setting_unless_auth_is_disabled() -> None:
    assert credentials_from(Settings()) is None
    on = Settings.from_env({"MAILSINK_UI_AUTH": "ops:pw"})
    assert credentials_from(on) == Credentials(b"ops", b"pw")
    off = Settings.from_env({"MAILSINK_UI_AUTH": "ops:pw", "AUTH_DISABLED": "true"})
    assert credentials_from(off) is None
