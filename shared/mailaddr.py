"""E-mail header values and addresses, checked once for every part that builds mail.

Used by the gateway (to refuse a bad mail job with 422) and by the mailer (to refuse
it again before any SMTP). The rules are deliberately narrower than RFC 5322: one address
per entry, `user@host` or `Name <user@host>`, no CR/LF anywhere, so nothing a client sends
can add a header or smuggle a second recipient into one entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# CR, LF and every other control character or Unicode line break a mail client or parser
# downstream might treat as the end of a header line (tab is fine).
LINE_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*")
# `Name <addr>` with a plain or a "quoted" display name.
_NAMED = re.compile(r'(?P<name>"(?:[^"\\]|\\.)*"|[^<>"]*?)\s*<(?P<addr>[^<>]*)>')
# A plain display name must not look like (part of) another address or a group, and no
# display name, quoted or not, may look like an address ("ceo@bank.com" <x@evil.com>).
_NAME_SEPARATORS = re.compile(r"[,;:@<>]")
ADDRESS_LIKE = re.compile(r"[@<>]")
MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit
MAX_DISPLAY_NAME = 200
ONE_ADDRESS = "must be one e-mail address: user@host or Name <user@host>"

# The same rules as JSON Schema patterns (ECMA and Python alike), for the OpenAPI document.
# Not expressible there, and so checked by the server alone: the 254-character address and
# 200-character display name limits.
_CONTROL = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029"
HEADER_VALUE_PATTERN = rf"^[^{_CONTROL}]*$"
_SPACE = r"[ \t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]*"  # what strip() takes, but breaks
_ADDRESS = rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*"
_PLAIN_NAME = rf'[^<>"@,;:{_CONTROL}]*'
_QUOTED_NAME = rf'"(?:[^"\\@<>{_CONTROL}]|\\[^@<>{_CONTROL}])*"'
ADDRESS_PATTERN = (
    rf"^{_SPACE}(?:{_ADDRESS}|(?:{_QUOTED_NAME}|{_PLAIN_NAME}){_SPACE}<{_SPACE}{_ADDRESS}{_SPACE}>)"
    rf"{_SPACE}$"
)


def check_header_value(value: str) -> str:
    """Return `value` if it can go into a header as is, else raise ValueError."""
    if LINE_BREAKING.search(value):
        raise ValueError("must not contain line breaks (CR/LF) or control characters")
    return value


def parse_address(value: str) -> tuple[str, str]:
    """(display name, user@host) of exactly one address, or ValueError saying why."""
    check_header_value(value)
    text = value.strip()
    if not text:
        raise ValueError(ONE_ADDRESS)
    named = _NAMED.fullmatch(text)
    if named:
        name, addr = named["name"].strip(), named["addr"].strip()
        if not name.startswith('"') and _NAME_SEPARATORS.search(name):
            raise ValueError(ONE_ADDRESS)
        if ADDRESS_LIKE.search(name.strip('"')) or len(name) > MAX_DISPLAY_NAME:
            raise ValueError("has a display name that looks like an address or is too long")
    else:
        name, addr = "", text
    if len(addr) > MAX_ADDRESS_LENGTH or not _ADDR_SPEC.fullmatch(addr):
        raise ValueError(ONE_ADDRESS)
    return name.strip('"'), addr


def validate_address(value: str) -> str:
    """`value` stripped, if it is exactly one acceptable address (a pydantic validator)."""
    parse_address(value)
    return value.strip()


def check_recipient_count(limit: int, *lists: Sequence[str]) -> int:
    """The number of recipients over every list, or ValueError when above `limit`."""
    count = sum(len(addresses) for addresses in lists)
    if count > limit:
        raise ValueError(f"too many recipients: {count}, at most {limit} (MAX_RECIPIENTS)")
    return count
