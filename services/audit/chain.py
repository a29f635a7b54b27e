"""The hash chain: one audit record per line, each sealed with the hash of the one before.

A record is `{"seq", "prev", "recorded_at", "source", "event", "hash"}` written as canonical
JSON (sorted keys, no spaces, ASCII). `hash` is the SHA-256 of the canonical JSON of every
other field, `prev` the previous record's `hash` (GENESIS for the first record ever). So a
changed byte breaks that record's hash, and a removed or moved line breaks the `seq`/`prev`
link of the record found in its place.

Two optional fields, covered by the hash when present (records written before them have
neither, and verify as before): `publisher`, the broker user that published the event (its
AMQP `user_id`; absent when the message carried none), and `refused`, why the audit did not
believe the event (AUDIT_PUBLISHERS): kept as evidence, left out of the read model's status.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import JobsuiteError

GENESIS = "0" * 64
SOURCES = ("events", "dead")
_FIELDS = frozenset({"seq", "prev", "recorded_at", "source", "event", "hash"})
_OPTIONAL = frozenset({"publisher", "refused"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BadRecord(JobsuiteError):
    """A line is not an intact audit record; the message says what is wrong with it."""


def canonical_json(value: Any) -> bytes:
    """The one byte form that is hashed and written: sorted keys, no spaces, ASCII only."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields)).hexdigest()


@dataclass(frozen=True)
class Marks:
    """What the audit adds to an event: who published it, and why it was not believed."""

    publisher: str | None = None
    refused: str | None = None

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in (("publisher", self.publisher), ("refused", self.refused)) if v}


NO_MARKS = Marks()


@dataclass(frozen=True)
class Record:
    seq: int
    prev: str
    recorded_at: str
    source: str
    event: dict[str, Any]
    hash: str
    marks: Marks = NO_MARKS

    def fields(self) -> dict[str, Any]:
        """Everything the hash covers."""
        return {
            "seq": self.seq,
            "prev": self.prev,
            "recorded_at": self.recorded_at,
            "source": self.source,
            "event": self.event,
            **self.marks.fields(),
        }

    def line(self) -> bytes:
        return canonical_json({**self.fields(), "hash": self.hash}) + b"\n"

    @property
    def event_id(self) -> str:
        return str(self.event.get("event_id", ""))


def seal(
    seq: int,
    prev: str,
    recorded_at: str,
    source: str,
    event: dict[str, Any],
    marks: Marks = NO_MARKS,
) -> Record:
    """A new record chained to `prev`."""
    fields = {"seq": seq, "prev": prev, "recorded_at": recorded_at, "source": source}
    digest = _digest({**fields, "event": event, **marks.fields()})
    return Record(seq, prev, recorded_at, source, event, digest, marks)


def parse_record(raw: bytes) -> Record:
    """Read one line (without its newline) and check it is intact in itself."""
    try:
        obj = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise BadRecord("not valid JSON") from None
    if not isinstance(obj, dict) or not _FIELDS <= set(obj) <= _FIELDS | _OPTIONAL:
        raise BadRecord("not an audit record (wrong fields)")
    if not (
        isinstance(obj["seq"], int)
        and not isinstance(obj["seq"], bool)
        and isinstance(obj["prev"], str)
        and isinstance(obj["hash"], str)
        and isinstance(obj["recorded_at"], str)
        and obj["source"] in SOURCES
        and isinstance(obj["event"], dict)
        and all(isinstance(obj[k], str) and obj[k] for k in _OPTIONAL & set(obj))
    ):
        raise BadRecord("not an audit record (a field has the wrong type)")
    marks = Marks(obj.get("publisher"), obj.get("refused"))
    record = Record(
        obj["seq"], obj["prev"], obj["recorded_at"], obj["source"], obj["event"], obj["hash"], marks
    )
    if not _HEX64.match(record.hash) or _digest(record.fields()) != record.hash:
        raise BadRecord("its hash does not match its contents")
    if record.line() != raw + b"\n":
        raise BadRecord("it is not in canonical form (bytes were changed)")
    return record


def link_error(record: Record, expected_seq: int, expected_prev: str) -> str | None:
    """Why `record` does not follow the record before it, or None when it does."""
    if record.seq != expected_seq:
        return f"seq {record.seq} where {expected_seq} was expected (a record removed or moved)"
    if record.prev != expected_prev:
        return "its prev hash is not the hash of the record before it"
    return None
