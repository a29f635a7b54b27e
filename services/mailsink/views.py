"""What the HTTP API shows of a stored message: summaries, details, attachments. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote, unquote

from services.mailsink.store import Stored

ENVELOPE_FROM = "X-Mailsink-Envelope-From"
# src="cid:…" (or url(cid:…) in a style): the part's Content-ID, up to the quote or bracket.
_CID = re.compile(r"""((?:src|background)\s*=\s*["']?|url\(\s*["']?)cid:([^"')\s>]+)""", re.I)
ENVELOPE_TO = "X-Mailsink-Envelope-To"


@dataclass(frozen=True)
class Part:
    name: str
    content_type: str
    data: bytes


def attachments(message: EmailMessage) -> list[Part]:
    """Every part with a filename or `Content-Disposition: attachment`, in order."""
    found = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name is None and part.get_content_disposition() != "attachment":
            continue
        data = part.get_payload(decode=True)
        found.append(
            Part(
                name or f"part-{index}",
                part.get_content_type(),
                data if isinstance(data, bytes) else b"",
            )
        )
    return found


def inline_part(message: EmailMessage, content_id: str) -> Part | None:
    """The part with this Content-ID (`cid:` in the HTML names it without its <>)."""
    for part in message.walk():
        if part.is_multipart():
            continue
        if str(part.get("Content-ID", "")).strip().strip("<>") == content_id:
            data = part.get_payload(decode=True)
            return Part(
                content_id, part.get_content_type(), data if isinstance(data, bytes) else b""
            )
    return None


def with_inline_links(html: str) -> str:
    """`cid:` references (inline images) made links to `cid/<id>`, beside the HTML part."""
    return _CID.sub(lambda m: f"{m.group(1)}cid/{quote(unquote(m.group(2)), safe='')}", html)


def find_attachment(message: EmailMessage, name: str) -> Part | None:
    return next((part for part in attachments(message) if part.name == name), None)


def summary(stored: Stored) -> dict[str, object]:
    m = stored.message
    return {
        "id": stored.key,
        "message_id": _header(m, "Message-ID"),
        "from": _header(m, "From"),
        "to": _addresses(m, "To"),
        "cc": _addresses(m, "Cc"),
        "envelope_to": _header(m, ENVELOPE_TO).split(", ") if m.get(ENVELOPE_TO) else [],
        "subject": _header(m, "Subject"),
        "date": _header(m, "Date"),
        "received": stored.received.isoformat(),
        "attachments": [part.name for part in attachments(m)],
        "read": stored.read,
        "size": stored.size,
    }


def searchable(message: dict[str, object]) -> dict[str, str]:
    """What a search looks in (search.py), lower case, from a summary or a detail."""

    def text(value: object) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value or "")

    recipients = [text(message.get(name)) for name in ("to", "cc", "envelope_to")]
    return {
        "from": text(message.get("from")).lower(),
        "to": " ".join(recipients).lower(),
        "subject": text(message.get("subject")).lower(),
        "text": text(message.get("text")).lower(),
    }


def html_body(message: EmailMessage) -> str | None:
    return _body(message, "html")


def text_body(message: EmailMessage) -> str | None:
    return _body(message, "plain")


def detail(stored: Stored) -> dict[str, object]:
    m = stored.message
    return {
        **summary(stored),
        "headers": [[name, str(value)] for name, value in m.items()],
        "text": _body(m, "plain"),
        "html": _body(m, "html"),
        "attachments": [
            {"name": p.name, "content_type": p.content_type, "size": len(p.data)}
            for p in attachments(m)
        ],
    }


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header the parser cannot make sense of: show nothing
        return ""
    return "" if value is None else str(value)


def _addresses(message: EmailMessage, name: str) -> list[str]:
    try:
        header = message.get(name)
        return [str(a) for a in header.addresses] if header is not None else []
    except Exception:  # malformed: fall back to the text as it came
        return [_header(message, name)]


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
        if part is None:
            return None
        content = part.get_content()
    except (KeyError, LookupError, ValueError):  # unknown charset or broken encoding
        return None
    return content if isinstance(content, str) else None
