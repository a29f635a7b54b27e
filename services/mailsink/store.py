"""The sink's mailbox: a Maildir, plus an index of the Message-IDs it holds.

A message whose Message-ID is already held is not stored again (the mailer resends with the
same Message-ID when it cannot know whether the first copy arrived). The index is rebuilt
from the Maildir at start, so it holds across restarts. Thread-safe: the SMTP side stores
from a worker thread while the HTTP side reads from others.
"""

from __future__ import annotations

import email.policy
import mailbox
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

_headers_only = BytesHeaderParser(policy=email.policy.default)
_full = BytesParser(policy=email.policy.default)


@dataclass(frozen=True)
class Delivery:
    key: str
    duplicate: bool


@dataclass(frozen=True)
class Stored:
    key: str
    received: datetime
    message: EmailMessage


def message_id_of(raw: bytes) -> str | None:
    try:
        value = _headers_only.parsebytes(raw).get("Message-ID")
    except Exception:  # a header the parser chokes on: treat as having no Message-ID
        return None
    if value is None:
        return None
    return str(value).strip() or None


class MailStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # The folder may exist empty already (a volume's mount point): make the Maildir in it.
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(self.root, factory=None, create=False)
        self._lock = threading.Lock()
        self._by_message_id = self._index()

    def _index(self) -> dict[str, str]:
        index = {}
        for key in self._box.iterkeys():
            message_id = message_id_of(self._box.get_bytes(key))
            if message_id is not None:
                index.setdefault(message_id, key)
        return index

    def deliver(self, raw: bytes) -> Delivery:
        """Store `raw` unless a message with its Message-ID is held already."""
        message_id = message_id_of(raw)
        with self._lock:
            held = self._by_message_id.get(message_id) if message_id else None
            if held is not None:
                return Delivery(held, duplicate=True)
            key = self._box.add(raw)
            if message_id:
                self._by_message_id[message_id] = key
            return Delivery(key, duplicate=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._box)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._box.keys())

    def raw(self, key: str) -> bytes | None:
        with self._lock:
            try:
                return self._box.get_bytes(key)
            except KeyError:
                return None

    def get(self, key: str) -> Stored | None:
        with self._lock:
            try:
                received = self._box.get_message(key).get_date()
                raw = self._box.get_bytes(key)
            except KeyError:
                return None
        message = _full.parsebytes(raw)
        assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
        return Stored(key, datetime.fromtimestamp(received, UTC), message)

    def newest_first(self) -> list[Stored]:
        stored = [s for s in (self.get(key) for key in self.keys()) if s is not None]
        return sorted(stored, key=lambda s: (s.received, s.key), reverse=True)
