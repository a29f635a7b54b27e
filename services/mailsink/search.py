"""Search in the mail view, Mailpit's way: words match anywhere (sender, recipients,
subject, text), and a few qualifiers narrow it. Pure.

    invoice                 every message with "invoice" somewhere (case-insensitive)
    "late fee"              the phrase
    from:jobs@x.com         in From        to:ann   in To, Cc or the envelope's recipients
    subject:invoice         in Subject     is:unread / is:read    has:attachment
    -word, -from:…          not
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from services.mailsink.views import searchable

FIELDS = ("from", "to", "subject")
FLAGS = {"is:unread", "is:read", "has:attachment", "has:attachments"}


class QueryError(ValueError):
    """A query that cannot be read (an unclosed quote)."""


@dataclass(frozen=True)
class Term:
    field: str | None  # None: anywhere; "flag": one of FLAGS
    value: str
    negated: bool = False


def parse(query: str) -> list[Term]:
    try:
        words = shlex.split(query)
    except ValueError as e:
        raise QueryError(f"cannot read the search {query!r}: {e}") from e
    return [_term(word) for word in words if word.strip("-")]


def _term(word: str) -> Term:
    negated = word.startswith("-")
    word = word.removeprefix("-")
    if word.lower() in FLAGS:
        return Term("flag", word.lower().removesuffix("s"), negated)
    name, colon, value = word.partition(":")
    if colon and name.lower() in FIELDS and value:
        return Term(name.lower(), value.lower(), negated)
    return Term(None, word.lower(), negated)


def matcher(query: str) -> Callable[[dict[str, object]], bool]:
    """A test for a message's summary (views.summary) plus its `text`."""
    terms = parse(query)

    def matches(message: dict[str, object]) -> bool:
        return all(_holds(term, message) != term.negated for term in terms)

    return matches


def _holds(term: Term, message: dict[str, object]) -> bool:
    if term.field == "flag":
        if term.value == "is:unread":
            return not message.get("read", False)
        if term.value == "is:read":
            return bool(message.get("read", False))
        return bool(message.get("attachments"))
    fields = searchable(message)
    haystack = fields[term.field] if term.field is not None else " ".join(fields.values())
    return term.value in haystack
