"""Building the mail: headers from checked values only, bodies, attachments. Pure.

`Bcc` is never a header: its addresses go into the SMTP envelope alone.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from services.mailer.addresses import Recipients, header_value
from services.mailer.headers import MAIL_POLICY
from shared.jobtypes.mail import MailParams

MESSAGE_ID_DOMAIN = "jobsuite"
_OCTET_STREAM = ("application", "octet-stream")
# mimetypes reports compression separately ("x.tar.gz" -> application/x-tar, gzip).
_COMPRESSED = {"gzip": "gzip", "bzip2": "x-bzip2", "xz": "x-xz", "br": "x-brotli"}


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes

    @property
    def mime_type(self) -> tuple[str, str]:
        return mime_type_of(self.filename)


def message_id_for(job_id: str) -> str:
    """The same job always gives the same Message-ID, so a resent mail is known as a copy."""
    return f"<{job_id}@{MESSAGE_ID_DOMAIN}>"


def mime_type_of(filename: str) -> tuple[str, str]:
    guessed, encoding = mimetypes.guess_type(filename, strict=False)
    if encoding is not None:
        return "application", _COMPRESSED.get(encoding, "octet-stream")
    if guessed is None:
        return _OCTET_STREAM
    maintype, _, subtype = guessed.partition("/")
    # message/* parts may not be base64-encoded (RFC 2046 5.2.1): attach them as plain bytes.
    if maintype in ("message", "multipart"):
        return _OCTET_STREAM
    return maintype, subtype


def compose(
    params: MailParams,
    recipients: Recipients,
    *,
    sender: Address,
    message_id: str,
    date: datetime,
    attachments: list[Attachment],
) -> EmailMessage:
    # MAIL_POLICY writes the Subject and non-ASCII display names so no space is lost.
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender
    message["To"] = recipients.to
    if recipients.cc:
        message["Cc"] = recipients.cc
    message["Subject"] = header_value(params.subject, "subject")
    message["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    _set_bodies(message, params.text, params.html)
    for attachment in attachments:
        maintype, subtype = attachment.mime_type
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def _set_bodies(message: EmailMessage, text: str | None, html: str | None) -> None:
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")  # -> multipart/alternative
    elif html is not None:
        message.set_content(html, subtype="html")
