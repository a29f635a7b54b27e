"""Search in the mail view, Mailpit's way: words match anywhere (sender, recipients,
subject, text), and a few qualifiers narrow it. Pure.

    invoice                 every message with "invoice" somewhere (case-insensitive)
    "late fee"              the phrase
    from:jobs@x.com         in From        to:ann   in To, Cc or the envelope's recipients
    subject:invoice         in Subject     is:unread / is:read    has:attachment
    -word, -from:…          not
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from services.mailsink.views import searchable

FIELDS = ("from", "to", "subject")
# -"a phrase" or "a phrase" (a closed pair of quotes), else a run of non-space characters.
_TOKEN = re.compile(r'(?P<neg>-?)"(?P<phrase>[^"]*)"|(?P<word>\S+)')
FLAGS = {"is:unread", "is:read", "has:attachment", "has:attachments"}


@dataclass(frozen=True)
class Term:
    field: str | None  # None: anywhere; "flag": one of FLAGS
    value: str
    negated: bool = False


def parse(query: str) -> list[Term]:
    """Any text is a query: only a pair of double quotes groups words; a lone quote, an
    apostrophe (O'Brien) or a backslash is taken as typed."""
    words = [quoted if quoted is not None else word for quoted, word in _words(query)]
    return [_term(word) for word in words if word.strip("-")]


def _words(query: str) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    for m in _TOKEN.finditer(query):
        if m.group("phrase") is not None:
            found.append((m.group("neg") + m.group("phrase"), ""))
        else:
            found.append((None, m.group("word")))
    return found


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
