"""Mail composition: headers from checked values, bodies, attachments with the right types."""

from __future__ import annotations

import email
import email.policy
import io
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from services.mailer.addresses import mail_address, recipients_of
from services.mailer.compose import Attachment, compose, message_id_for, mime_type_of
from shared.errors import PermanentJobError
from shared.ids import new_id
from shared.jobtypes.mail import MailParams

SENDER = Address("Jobsuite", "jobs", "example.com")
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def build(attachments: list[Attachment] | None = None, **fields: object) -> EmailMessage:
    params = MailParams.model_validate(
        {"to": ["Ann <ann@example.com>"], "subject": "Your report", "text": "Hello", **fields}
    )
    return compose(
        params,
        recipients_of(params, max_recipients=50),
        sender=SENDER,
        message_id=message_id_for("6f1c2a4e-0000-4000-8000-000000000001"),
        date=WHEN,
        attachments=attachments or [],
    )


def wire_bytes(message: EmailMessage) -> bytes:
    """The bytes `smtplib.SMTP.send_message` writes: the message's own policy, CRLF."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(message, linesep="\r\n")
    return out.getvalue()


def on_the_wire(message: EmailMessage) -> EmailMessage:
    """The message as the server receives it, parsed back."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(wire_bytes(message))
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers_come_from_configuration_and_checked_values() -> None:
    m = on_the_wire(build(cc=["cc@example.com"]))
    assert m["From"] == "Jobsuite <jobs@example.com>"
    assert m["To"] == "Ann <ann@example.com>"
    assert m["Cc"] == "cc@example.com"
    assert m["Subject"] == "Your report"
    assert m["Date"] == "Mon, 06 May 2024 07:08:09 +0000"
    assert m["Auto-Submitted"] == "auto-generated"


def test_the_message_id_is_derived_from_the_job_id() -> None:
    job_id = new_id()
    assert message_id_for(job_id) == f"<{job_id}@jobsuite>"
    assert message_id_for(job_id) == message_id_for(job_id)
    assert on_the_wire(build())["Message-ID"] == "<6f1c2a4e-0000-4000-8000-000000000001@jobsuite>"


def test_bcc_recipients_appear_nowhere_in_the_message() -> None:
    message = build(bcc=["secret@hidden.example", "Boss <boss@hidden.example>"])
    wire = message.as_bytes(policy=email.policy.SMTP)
    assert b"hidden.example" not in wire
    assert "Bcc" not in on_the_wire(message)


def test_no_cc_header_without_cc_recipients() -> None:
    assert "Cc" not in on_the_wire(build())


def test_text_and_html_make_a_multipart_alternative() -> None:
    m = on_the_wire(build(html="<p>Hello</p>"))
    assert m.get_content_type() == "multipart/alternative"
    plain, html = m.iter_parts()
    assert (plain.get_content_type(), plain.get_content().strip()) == ("text/plain", "Hello")
    assert (html.get_content_type(), html.get_content().strip()) == ("text/html", "<p>Hello</p>")


@pytest.mark.parametrize(
    ("fields", "content_type"),
    [({"text": "Hi"}, "text/plain"), ({"text": None, "html": "<b>Hi</b>"}, "text/html")],
)
def test_a_single_body_is_a_single_part(fields: dict[str, object], content_type: str) -> None:
    m = on_the_wire(build(**fields))
    assert m.get_content_type() == content_type
    assert m.get_content_charset() == "utf-8"


def test_attachments_keep_their_bytes_names_and_types() -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1))
    m = on_the_wire(
        build(
            [Attachment("invoice.pdf", pdf), Attachment("photo.png", png)],
            html="<p>Hello</p>",
        )
    )
    assert m.get_content_type() == "multipart/mixed"
    body, *parts = m.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    found = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in parts]
    assert found == [("invoice.pdf", "application/pdf", pdf), ("photo.png", "image/png", png)]
    assert all(p.get_content_disposition() == "attachment" for p in parts)


@pytest.mark.parametrize(
    ("filename", "mime_type"),
    [
        ("invoice.pdf", ("application", "pdf")),
        ("photo.JPG", ("image", "jpeg")),
        ("thumb.webp", ("image", "webp")),
        ("notes.txt", ("text", "plain")),
        ("data.csv", ("text", "csv")),
        ("archive.tar.gz", ("application", "gzip")),
        ("forwarded.eml", ("application", "octet-stream")),
        ("blob", ("application", "octet-stream")),
        ("strange.zzzunknown", ("application", "octet-stream")),
    ],
)
def test_mime_types_follow_the_file_name(filename: str, mime_type: tuple[str, str]) -> None:
    assert mime_type_of(filename) == mime_type


def test_a_text_attachment_keeps_its_exact_bytes() -> None:
    data = b"line one\r\nline two\nno newline at the end"
    m = on_the_wire(build([Attachment("notes.txt", data)]))
    (_, part) = m.iter_parts()
    assert part.get_payload(decode=True) == data


def test_a_subject_with_a_line_break_is_refused_when_composing() -> None:
    with pytest.raises(PermanentJobError) as refused:
        build(subject="Hi\r\nBcc: victim@example.com")
    assert refused.value.kind == "header_injection"


def test_a_non_ascii_subject_and_names_are_encoded_not_raw() -> None:
    params = MailParams(to=["Jürgen Müller <j@example.com>"], subject="Grüße", text="ä")
    message = compose(
        params,
        recipients_of(params, 50),
        sender=mail_address("Büro <office@example.com>", "MAIL_FROM"),
        message_id=message_id_for(new_id()),
        date=WHEN,
        attachments=[],
    )
    wire = message.as_bytes(policy=email.policy.SMTP)
    header_block = wire.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()
    assert on_the_wire(message)["Subject"] == "Grüße"
    assert on_the_wire(message)["To"] == "Jürgen Müller <j@example.com>"


def test_a_naive_submission_time_is_taken_as_utc() -> None:
    params = MailParams(to=["a@example.com"], subject="s", text="t")
    message = compose(
        params,
        recipients_of(params, 50),
        sender=SENDER,
        message_id=message_id_for(new_id()),
        date=datetime(2024, 1, 2, 3, 4, 5),
        attachments=[],
    )
    assert message["Date"] == "Tue, 02 Jan 2024 03:04:05 +0000"


SUBJECTS = [
    "Faktura Łódź · Τιμολόγιο 2026-07 · Rechnung",  # lost the space before "·" (issue 17)
    "Τιμολόγιο για την εταιρεία Ωmega Ltd · προθεσμία πληρωμής τριάντα ημέρες · αριθμός 42",  # noqa: RUF001
    "Faktura VAT nr 2026/07/0042 dla Przedsiębiorstwa Handlowego Źdźbło z siedzibą w Łodzi",
    "请款单 第二〇二六年七月 请在三十天内付款 谢谢 请款单 第二〇二六年七月 请在三十天内付款",
    "🧾 Invoice 👨‍👩‍👧‍👦 paid ✅ · 🇵🇱 🇬🇷 · " + "🎉" * 30,
    "Two  spaces  here · and  there · ünïcödé  too",
    "  leading and trailing spaces · Łódź  ",
    "Plain ASCII subject with one non-ASCII character at the very end: naïve",
    "A very long plain ASCII subject " * 8,
    "An ASCII subject that looks encoded: =?utf-8?b?SGk=?= stays literal",
    "tab\there",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_subject_arrives_exactly_as_sent(subject: str) -> None:
    message = build(subject=subject)
    wire = wire_bytes(message)
    head = wire.split(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(line) <= 76 for line in head.split(b"\r\n")), head
    assert on_the_wire(message)["Subject"] == subject


def test_non_ascii_display_names_keep_their_spaces() -> None:
    names = ["Łódź Biuro · Główne", "Müller & Söhne", "Τιμολόγιο Γραφείο"]
    m = on_the_wire(build(to=[f"{name} <a{i}@example.com>" for i, name in enumerate(names)]))
    assert [address.display_name for address in m["To"].addresses] == names
