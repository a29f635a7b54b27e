"""The mail view in a real Chromium with no internet, as Mailpit's core: a new mail appears
in the list without a reload, search narrows it, its page renders the HTML part in a sandbox
that loads nothing from elsewhere, lists the attachment with its size, and delete (with a
confirmation) empties the list, live in every open tab."""

from __future__ import annotations

import io
import smtplib
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image
from playwright.sync_api import Dialog, expect

from tests.browser.conftest import OfflinePage
from tests.conftest import SpawnFn
from tests.support.mailsink import MailSink, start_mailsink

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8  # 2,057 bytes: "2.1 kB"


class _Tracker(BaseHTTPRequestHandler):
    """A "remote" server on loopback that a mail's HTML points at: it must never be asked."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tracker)
    hits: list[str] = []
    server.RequestHandlerClass = type("Tracker", (_Tracker,), {"hits": hits})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sink(spawn: SpawnFn, tmp_path: Path) -> MailSink:
    return start_mailsink(spawn, tmp_path / "mail")


def send(sink: MailSink, subject: str, html: str, attach: bool = True) -> None:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "jobs@example.com", "ann@example.com", subject
    m.set_content(f"{subject} as text")
    m.add_alternative(html, subtype="html")
    if "cid:logo" in html:
        logo = io.BytesIO()
        Image.new("RGB", (24, 12), (0, 90, 200)).save(logo, "PNG")
        m.get_payload()[1].add_related(logo.getvalue(), "image", "png", cid="<logo@jobsuite>")
    if attach:
        m.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as smtp:
        smtp.send_message(m)


def test_a_new_mail_appears_live_and_opens_rendered_with_its_attachment(
    sink: MailSink, offline: OfflinePage, tracker: tuple[str, list[str]]
) -> None:
    remote, hits = tracker
    page = offline.page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(sink.url + "/")
    expect(page.get_by_text("No messages yet.")).to_be_visible()
    page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded

    html = (
        "<h2>Hello <b>Ann</b></h2><p id='body'>Your invoice is attached.</p>"
        "<img id='logo' alt='logo' src='cid:logo@jobsuite'>"
        f"<img alt='tracker' src='{remote}/pixel.gif'>"
        f"<link rel='stylesheet' href='{remote}/style.css'>"
        "<script>document.title = 'script ran'; parent.document.title = 'escaped'</script>"
    )
    send(sink, "Invoice INV-2026-000042", html)
    row = page.get_by_role("row").filter(has_text="Invoice INV-2026-000042")
    expect(row).to_be_visible(timeout=10_000)
    expect(row.get_by_text("unread")).to_be_visible()
    expect(page.locator("#count")).to_have_text("1 message, 1 unread")
    assert page.evaluate("window.loadedOnce") is True

    send(sink, "Weekly news", "<p>news</p>", attach=False)
    expect(page.get_by_role("row").filter(has_text="Weekly news")).to_be_visible(timeout=10_000)
    page.get_by_label("Search").fill("has:attachment")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row").filter(has_text="Weekly news")).to_have_count(0)
    expect(row).to_be_visible()

    row.get_by_role("link", name="Invoice INV-2026-000042").click()
    expect(page.get_by_role("heading", name="Invoice INV-2026-000042")).to_be_visible()
    body = page.frame_locator("#html-body")
    expect(body.locator("#body")).to_have_text("Your invoice is attached.")
    expect(body.locator("b")).to_have_text("Ann")
    # The inline image (cid:) shows, from the sink; the remote one does not.
    logo = body.locator("#logo")
    expect(logo).to_have_js_property("naturalWidth", 24)
    page.get_by_role("link", name="Text").click()
    expect(page.get_by_text("Invoice INV-2026-000042 as text")).to_be_visible()
    page.get_by_role("link", name="Attachments (1)").click()
    expect(page.get_by_role("link", name="invoice.pdf")).to_be_visible()
    expect(page.get_by_role("cell", name="2.1 kB")).to_be_visible()
    page.get_by_role("link", name="Headers").click()
    expect(page.get_by_role("rowheader", name="Subject")).to_be_visible()

    # The HTML ran no script and asked the "remote" server for nothing.
    assert hits == []
    expect(body.locator("title")).to_have_count(0)  # the script would have made one
    assert page.title() == "Invoice INV-2026-000042 · mailsink"
    assert offline.foreign == []
    assert errors == []

    page.get_by_role("link", name="All messages").click()
    expect(page.locator("#count")).to_have_text("2 messages, 1 unread")


def test_delete_asks_first_and_every_open_tab_follows(sink: MailSink, offline: OfflinePage) -> None:
    send(sink, "First", "<p>one</p>")
    send(sink, "Second", "<p>two</p>")
    page = offline.page
    other = page.context.new_page()  # a second tab on the list, kept live
    other.goto(sink.url + "/")
    expect(other.locator("#count")).to_have_text("2 messages, 2 unread")

    page.goto(sink.url + "/")
    page.get_by_role("link", name="First").click()
    expect(other.locator("#count")).to_have_text("2 messages, 1 unread")  # read, seen live

    answers: list[str] = []

    def answer(dialog: Dialog) -> None:
        answers.append(dialog.message)
        dialog.dismiss() if len(answers) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Delete").click()  # dismissed: nothing goes
    expect(page.get_by_role("heading", name="First")).to_be_visible()
    assert len(sink.messages()) == 2
    page.get_by_role("button", name="Delete").click()  # accepted
    expect(page.locator("#count")).to_have_text("1 message, 1 unread")
    expect(other.get_by_role("row").filter(has_text="First")).to_have_count(0)
    assert answers == ["Delete this message?", "Delete this message?"]

    page.get_by_role("button", name="Delete all").click()
    expect(page.get_by_text("No messages yet.")).to_be_visible()
    expect(other.get_by_text("No messages yet.")).to_be_visible()
    assert sink.messages() == [] and sink.maildir_files() == []
