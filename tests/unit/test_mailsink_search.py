"""Search in the mail view: words anywhere, qualifiers, phrases, negation."""

from __future__ import annotations

import pytest

from services.mailsink.search import matcher

INVOICE: dict[str, object] = {
    "from": "Jobs <jobs@x.com>",
    "to": ["Ann <ann@y.com>"],
    "cc": [],
    "envelope_to": ["ann@y.com", "hidden@z.com"],
    "subject": "Invoice INV-7 is ready",
    "text": "Dear Ann, the late fee is waived.",
    "attachments": ["invoice.pdf"],
    "read": False,
}
NEWS: dict[str, object] = {
    "from": "news@x.com",
    "to": ["bob@y.com"],
    "cc": ["ann@y.com"],
    "envelope_to": ["bob@y.com", "ann@y.com"],
    "subject": "Weekly news",
    "text": "Nothing late here",
    "attachments": [],
    "read": True,
}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("", ["invoice", "news"]),
        ("invoice", ["invoice"]),
        ("INVOICE", ["invoice"]),
        ("late", ["invoice", "news"]),
        ('"late fee"', ["invoice"]),
        ("from:jobs@x.com", ["invoice"]),
        ("from:ann", []),
        ("to:ann", ["invoice", "news"]),  # To, and Cc
        ("to:hidden@z.com", ["invoice"]),  # a Bcc recipient: only in the envelope
        ("subject:weekly", ["news"]),
        ("subject:ann", []),
        ("is:unread", ["invoice"]),
        ("is:read", ["news"]),
        ("has:attachment", ["invoice"]),
        ("-has:attachment", ["news"]),
        ("late -invoice", ["news"]),
        ("to:ann is:read", ["news"]),
        ("-", ["invoice", "news"]),
        ("unknown:word", []),  # not a qualifier: the words themselves
    ],
)
def test_queries_find_what_they_say(query: str, found: list[str]) -> None:
    matches = matcher(query)
    names = {"invoice": INVOICE, "news": NEWS}
    assert [name for name, message in names.items() if matches(message)] == found


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ('"late fee', ["invoice"]),  # an unclosed quote is taken as typed: `"late`, `fee`
        ("o'brien", ["news"]),
        ("from:o'brien", ["news"]),
        ("c:\\tmp", ["news"]),
    ],
)
def test_any_text_is_a_query(query: str, found: list[str]) -> None:
    obrien = {**NEWS, "from": "Pat O'Brien <pat@x.com>", "text": "files in c:\\tmp"}
    matches = matcher(query)
    names = {"invoice": {**INVOICE, "text": 'the "late fee is waived'}, "news": obrien}
    assert [name for name, message in names.items() if matches(message)] == found
