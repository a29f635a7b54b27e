"""The mail view for a person: search, unread state, the message page's tabs, the HTML part
locked in its sandbox, delete one and all (API and page), its own assets."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.mailsink.api import create_app
from services.mailsink.chaos import Chaos
from services.mailsink.store import MailStore
from services.mailsink.views import with_inline_links

BASE = "http://localhost"


def mail(subject: str, *, to: str = "ann@y.com", html: str | None = None, n: int = 0) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "jobs@x.com", to, subject
    m["Message-ID"] = f"<{n}.{abs(hash(subject))}@test>"
    m.set_content(f"Text of {subject}")
    if html is not None:
        m.add_alternative(html, subtype="html")
    m.add_attachment(b"x" * 1500, maintype="application", subtype="pdf", filename="a b.pdf")
    return m.as_bytes()


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MailStore(tmp_path / "mail")


@pytest.fixture
def client(store: MailStore) -> TestClient:
    return TestClient(create_app(store, Chaos()), base_url=BASE)


def test_search_narrows_the_list_and_the_json(client: TestClient, store: MailStore) -> None:
    store.deliver(mail("Invoice 7", n=1))
    store.deliver(mail("Weekly news", to="bob@y.com", n=2))
    assert [m["subject"] for m in client.get("/messages", params={"q": "invoice"}).json()] == [
        "Invoice 7"
    ]
    assert [m["subject"] for m in client.get("/messages", params={"q": "to:bob"}).json()] == [
        "Weekly news"
    ]
    page = client.get("/", params={"q": "weekly"})
    assert "Weekly news" in page.text and "Invoice 7" not in page.text
    assert "1 message, 1 unread (of 2)" in page.text
    assert 'value="weekly"' in page.text


def test_a_search_with_a_lone_quote_or_apostrophe_is_searched_as_typed(
    client: TestClient, store: MailStore
) -> None:
    store.deliver(mail("Dear O'Brien", n=1))
    store.deliver(mail("Other", n=2))
    found = client.get("/messages", params={"q": "o'brien"}).json()
    assert [m["subject"] for m in found] == ["Dear O'Brien"]
    assert client.get("/", params={"q": '"open'}).status_code == 200


def test_an_attachment_named_with_a_slash_is_served(client: TestClient, store: MailStore) -> None:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "jobs@x.com", "ann@y.com", "Slash"
    m.set_content("text")
    m.add_attachment(b"abc", maintype="text", subtype="plain", filename="a/b.txt")
    key = store.deliver(m.as_bytes()).key
    files = client.get(f"/view/{key}?tab=attachments").text
    assert f'href="../messages/{key}/attachments/a%2Fb.txt"' in files
    assert client.get(f"/messages/{key}/attachments/a%2Fb.txt").content == b"abc"


def test_opening_a_message_marks_it_read(client: TestClient, store: MailStore) -> None:
    key = store.deliver(mail("Invoice 7")).key
    assert client.get("/messages").json()[0]["read"] is False
    assert 'class="unread"' in client.get("/").text
    assert client.get(f"/view/{key}").status_code == 200
    assert client.get("/messages").json()[0]["read"] is True
    assert 'class="unread"' not in client.get("/").text
    other = store.deliver(mail("Other", n=3)).key
    assert client.put(f"/messages/{other}/read").status_code == 204
    assert client.put("/messages/nope/read").status_code == 404


def test_the_message_page_has_a_tab_for_each_part(client: TestClient, store: MailStore) -> None:
    key = store.deliver(mail("Invoice <7>", html="<p>Hello <b>Ann</b></p>")).key
    html_tab = client.get(f"/view/{key}")  # HTML first, when there is an HTML part
    assert "<h1>Invoice &lt;7&gt;</h1>" in html_tab.text
    assert re.search(
        r'<iframe id="html-body" sandbox=""[^>]*src="../messages/[^"]+/html"', html_tab.text
    )
    assert 'href="?tab=html" aria-current="page"' in html_tab.text
    assert "Text of Invoice &lt;7&gt;" in client.get(f"/view/{key}?tab=text").text
    headers = client.get(f"/view/{key}?tab=headers").text
    assert '<th scope="row">Message-ID</th>' in headers
    raw = client.get(f"/view/{key}?tab=raw").text
    assert "Content-Type: multipart/mixed" in raw
    files = client.get(f"/view/{key}?tab=attachments").text
    assert "Attachments (1)" in files and "a b.pdf" in files and "1.5 kB" in files
    assert f'href="../messages/{key}/attachments/a%20b.pdf" download' in files
    assert client.get(f"/view/{key}?tab=nonsense").status_code == 422
    assert client.get("/view/nope").status_code == 404


def test_a_message_without_html_opens_on_its_text(client: TestClient, store: MailStore) -> None:
    key = store.deliver(mail("Plain")).key
    page = client.get(f"/view/{key}").text
    assert 'href="?tab=text" aria-current="page"' in page and "Text of Plain" in page
    assert "no HTML part" in client.get(f"/view/{key}?tab=html").text
    assert client.get(f"/messages/{key}/html").status_code == 404


def test_the_html_part_may_run_nothing_and_load_nothing(
    client: TestClient, store: MailStore
) -> None:
    body = '<p>Hi</p><img src="https://tracker.example/p.gif"><script>alert(1)</script>'
    key = store.deliver(mail("Tracked", html=body)).key
    part = client.get(f"/messages/{key}/html")
    assert part.status_code == 200 and part.text.startswith("<p>Hi</p>")
    csp = part.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "img-src data:" in csp
    assert "frame-ancestors 'self'" in csp and part.headers["x-frame-options"] == "SAMEORIGIN"
    page_csp = client.get(f"/view/{key}").headers["content-security-policy"]
    assert "script-src 'self'" in page_csp and "unsafe-inline" not in page_csp


def test_delete_one_and_all_over_the_api(client: TestClient, store: MailStore) -> None:
    first = store.deliver(mail("One", n=1)).key
    store.deliver(mail("Two", n=2))
    store.deliver(mail("Three", n=3))
    assert client.delete(f"/messages/{first}").status_code == 204
    assert client.delete(f"/messages/{first}").status_code == 404
    assert len(store) == 2
    assert client.delete("/messages").json() == {"deleted": 2}
    assert client.get("/messages").json() == []


def test_the_pages_delete_buttons_post_forms_and_go_back_to_the_list(
    client: TestClient, store: MailStore
) -> None:
    first = store.deliver(mail("One", n=1)).key
    store.deliver(mail("Two", n=2))
    same_origin = {"Origin": BASE}
    one = client.post(
        "/actions/delete", data={"id": first}, headers=same_origin, follow_redirects=False
    )
    assert (one.status_code, one.headers["location"]) == (303, "../")
    assert [m["subject"] for m in client.get("/messages").json()] == ["Two"]
    page = client.get("/").text
    assert 'action="actions/delete-all" data-confirm="Delete every message?"' in page
    every = client.post("/actions/delete-all", headers=same_origin, follow_redirects=False)
    assert every.status_code == 303 and len(store) == 0
    foreign = client.post("/actions/delete-all", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_the_views_script_and_stylesheet_come_from_the_package(client: TestClient) -> None:
    page = client.get("/").text
    assert '<script src="static/mailview.js" defer></script>' in page
    script = client.get("/static/mailview.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert "javascript" in script.headers["content-type"]
    assert client.get("/static/mailview.css").status_code == 200
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and not [link for link in links if "//" in link]  # nothing from elsewhere


def test_inline_images_are_served_from_their_content_id(
    client: TestClient, store: MailStore
) -> None:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "jobs@x.com", "ann@y.com", "With a logo"
    m.set_content("text")
    m.add_alternative('<p>Hi</p><img src="cid:logo@x" alt="logo">', subtype="html")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 40
    m.get_payload()[1].add_related(png, "image", "png", cid="<logo@x>")
    m.add_attachment(b"<svg onload=alert(1)>", maintype="image", subtype="svg+xml", cid="<s@x>")
    key = store.deliver(m.as_bytes()).key

    part = client.get(f"/messages/{key}/html")
    assert '<img src="cid/logo%40x" alt="logo">' in part.text
    assert f"img-src data: {BASE};" in part.headers["content-security-policy"]
    image = client.get(f"/messages/{key}/cid/logo@x")
    assert (image.status_code, image.headers["content-type"], image.content) == (
        200, "image/png", png
    )  # fmt: skip
    svg = client.get(f"/messages/{key}/cid/s@x")
    assert svg.headers["content-type"] == "application/octet-stream"  # never as a page
    assert client.get(f"/messages/{key}/cid/other@x").status_code == 404


@pytest.mark.parametrize(
    ("html", "linked"),
    [
        ('<img src="cid:a@b">', '<img src="cid/a%40b">'),
        ("<img SRC='cid:a%40b'>", "<img SRC='cid/a%40b'>"),
        ("<td background=cid:bg>", "<td background=cid/bg>"),
        ('<div style="background: url(cid:bg)">', '<div style="background: url(cid/bg)">'),
        ("<p>cid:not-a-link</p>", "<p>cid:not-a-link</p>"),
    ],
)
def test_cid_references_become_links_beside_the_html_part(html: str, linked: str) -> None:
    assert with_inline_links(html) == linked
