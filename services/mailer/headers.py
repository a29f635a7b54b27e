"""Writing the Subject and the display names of a mail so every reader decodes what was sent.

The standard library folds a long non-ASCII header into RFC 2047 encoded words and puts the
fold on the space between two of them; decoders drop whitespace between adjacent encoded
words, so `Łódź · Τιμολόγιο` arrived as `Łódź· Τιμολόγιο`. Here such a value is written
whole as UTF-8 base64 encoded words that carry their own spaces, each line within 76
characters, folded with a line break and one space (which a decoder ignores). Plain ASCII
values with single spaces are folded at their spaces (unfolding restores them). `MAIL_POLICY`
is the message's policy, so `smtplib.send_message` and `as_bytes()` both write headers this way.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.policy import EmailPolicy
from typing import Any, cast

MAX_LINE = 76
_MAX_WORD = 75  # RFC 2047 2: an encoded word is at most 75 characters
_OWN_TEXT = {"subject"}
_ADDRESS_HEADERS = {"from", "to", "cc", "reply-to"}
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 atom
_JOINERS = {"\u200d"}  # a zero-width joiner keeps the next character in its cluster


def encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode("ascii") + "?="


def encoded_words(text: str, first_room: int, room: int = _MAX_WORD) -> list[str]:
    """`text` as encoded words, the first at most `first_room` characters long and the others
    at most `room`; a character and the marks or joiners that belong to it share a word, so a
    reader that shows words one by one never splits a letter from its accent."""
    words: list[str] = []
    current = ""
    for cluster in _clusters(text, room):
        limit = room if words else first_room
        if current and len(encoded_word(current + cluster)) > limit:
            words.append(encoded_word(current))
            current = ""
        current += cluster
    if current or not words:
        words.append(encoded_word(current))
    return words


def fold_tokens(name: str, tokens: list[str], linesep: str) -> str:
    """`Name: tok tok` with a line break before a token that would pass MAX_LINE."""
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > MAX_LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    return linesep.join(lines) + linesep


def fold_text(name: str, value: str, linesep: str) -> str:
    """An unstructured header (Subject) that decodes to exactly `value`."""
    words = value.split(" ")
    plain = (
        value.isascii()
        and value.isprintable()
        and "=?" not in value
        and "" not in words  # no leading, trailing or double spaces: folding keeps one
    )
    if plain:
        folded = fold_tokens(name, words, linesep)
        if all(len(line) <= MAX_LINE for line in folded.split(linesep)):
            return folded
    first_room = min(_MAX_WORD, MAX_LINE - len(name) - 2)
    return fold_tokens(name, encoded_words(value, first_room), linesep)


def fold_addresses(name: str, addresses: tuple[Address, ...], linesep: str) -> str:
    """An address header whose non-ASCII display names are written as `phrase_tokens`."""
    tokens: list[str] = []
    for index, address in enumerate(addresses):
        comma = "," if index < len(addresses) - 1 else ""
        if address.display_name.isascii():
            tokens.append(str(address) + comma)
            continue
        tokens.extend(phrase_tokens(address.display_name))
        tokens.append(f"<{address.addr_spec}>{comma}")
    return fold_tokens(name, tokens, linesep)


def phrase_tokens(display_name: str) -> list[str]:
    """A display name as plain ASCII words and encoded words, one space between tokens.

    Readers differ on the space between two encoded words of a name: RFC 2047 drops it,
    Python's parser (and others) adds one. So a name puts a plain word between encoded
    words wherever it has one, and a run of other words goes into as few encoded words as
    fit, split after a space kept inside the earlier word (right by RFC 2047).
    """
    tokens: list[str] = []
    run: list[str] = []
    for word in display_name.split():
        if _ATEXT.fullmatch(word) and "=?" not in word:
            tokens.extend(_encoded_run(run))
            run = []
            tokens.append(word)
        else:
            run.append(word)
    return tokens + _encoded_run(run)


def _encoded_run(words: list[str]) -> list[str]:
    encoded: list[str] = []
    current = ""
    for word in words:
        joined = f"{current} {word}" if current else word
        if current and len(encoded_word(joined)) > _MAX_WORD:
            encoded.append(encoded_word(current + " "))
            joined = word
        current = joined
    if current:
        # A single word too long for one encoded word splits inside itself.
        encoded.extend(
            encoded_words(current, _MAX_WORD)
            if len(encoded_word(current)) > _MAX_WORD
            else [encoded_word(current)]
        )
    return encoded


class MailPolicy(EmailPolicy):
    """The default policy but for the Subject and non-ASCII display names (module doc)."""

    def fold(self, name: str, value: str) -> str:
        own = self._own_fold(name, value)
        return super().fold(name, value) if own is None else own

    def fold_binary(self, name: str, value: str) -> bytes:
        own = self._own_fold(name, value)
        return super().fold_binary(name, value) if own is None else own.encode("ascii")

    def _own_fold(self, name: str, value: Any) -> str | None:
        if self.utf8:  # SMTPUTF8: the header goes as UTF-8 text, no encoded words at all
            return None
        key = name.lower()
        if key in _OWN_TEXT:
            return fold_text(name, str(value), self.linesep)
        addresses = getattr(value, "addresses", None)
        if key in _ADDRESS_HEADERS and addresses:
            if all(address.display_name.isascii() for address in addresses):
                return None
            return fold_addresses(name, tuple(addresses), self.linesep)
        return None


class LiteralText(UnstructuredHeader):
    """A Subject whose text is exactly what was given: the standard header would decode a
    literal `=?…?=` in it as if it were an encoded word."""

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value


_registry = HeaderRegistry()
# The registry mixes BaseHeader in itself; typeshed wants a BaseHeader subclass here.
_registry.map_to_type("subject", cast("type[BaseHeader]", LiteralText))
MAIL_POLICY = MailPolicy(header_factory=_registry)


def _clusters(text: str, room: int) -> list[str]:
    clusters: list[str] = []
    for char in text:
        attached = (
            clusters
            and len(encoded_word(clusters[-1] + char)) <= room  # a run of marks still splits
            and (
                unicodedata.category(char) in ("Mn", "Mc", "Me")
                or char in _JOINERS
                or clusters[-1][-1] in _JOINERS
                or "\ufe00" <= char <= "\ufe0f"  # variation selectors
                or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tone modifiers
            )
        )
        if attached:
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters
