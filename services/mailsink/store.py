"""The sink's mailbox: a Maildir, plus an index of the Message-IDs it holds.

A message whose Message-ID is already held is not stored again (the mailer resends with the
same Message-ID when it cannot know whether the first copy arrived). The index is rebuilt
from the Maildir at start, so it holds across restarts. A message read in the view moves
from `new/` to `cur/` with the Maildir `S` (seen) flag, so unread state survives a restart
and any mail client reading the folder agrees. With a cap (`max_messages`, as Mailpit's
MP_MAX_MESSAGES) the oldest messages go as new ones come. Thread-safe: the SMTP side stores
from a worker thread while the HTTP side reads from others. Every change is told to
`on_change` (the view's live updates), outside the lock.
"""

from __future__ import annotations

import email.policy
import mailbox
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

_headers_only = BytesHeaderParser(policy=email.policy.default)
_full = BytesParser(policy=email.policy.default)
INFO = ":2,"  # the Maildir separator before a message's flags in `cur/`
SEEN = "S"

# (what happened, the message's key or None for all): "stored", "read", "deleted", "cleared"
ChangeFn = Callable[[str, str | None], None]


@dataclass(frozen=True)
class Delivery:
    key: str
    duplicate: bool


@dataclass(frozen=True)
class Stored:
    key: str
    received: datetime
    message: EmailMessage
    read: bool = False
    size: int = 0  # bytes as stored


def message_id_of(raw: bytes) -> str | None:
    try:
        value = _headers_only.parsebytes(raw).get("Message-ID")
    except Exception:  # a header the parser chokes on: treat as having no Message-ID
        return None
    if value is None:
        return None
    return str(value).strip() or None


class MailStore:
    def __init__(self, root: Path, max_messages: int = 0) -> None:
        """`max_messages`: keep at most this many, dropping the oldest; 0 keeps all."""
        self.root = Path(root)
        self.max_messages = max_messages
        self.on_change: ChangeFn | None = None
        # The folder may exist empty already (a volume's mount point): make the Maildir in it.
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(self.root, factory=None, create=False)
        self._lock = threading.Lock()
        self._by_message_id = self._index()
        self._seen = self._seen_keys()
        self._trim()

    def _index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for key in self._box.iterkeys():
            message_id = message_id_of(self._box.get_bytes(key))
            if message_id is not None:
                index.setdefault(message_id, key)
        return index

    def _seen_keys(self) -> set[str]:
        seen = set()
        for name in os.listdir(self.root / "cur"):
            key, _, flags = name.partition(INFO)
            if SEEN in flags:
                seen.add(key)
        return seen

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
        self._tell("stored", key)
        self._trim()
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
            read = key in self._seen
        message = _full.parsebytes(raw)
        assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
        return Stored(key, datetime.fromtimestamp(received, UTC), message, read, len(raw))

    def newest_first(self) -> list[Stored]:
        stored = [s for s in (self.get(key) for key in self.keys()) if s is not None]
        return sorted(stored, key=lambda s: (s.received, s.key), reverse=True)

    def mark_read(self, key: str) -> bool:
        """Flag a message seen (a rename into `cur/`); False if there is no such message."""
        with self._lock:
            if key in self._seen:
                return True
            path = self._path_of(key)
            if path is None:
                return False
            flags = path.name.partition(INFO)[2]
            os.rename(path, self.root / "cur" / f"{key}{INFO}{''.join(sorted(flags + SEEN))}")
            self._seen.add(key)
        self._tell("read", key)
        return True

    def delete(self, key: str) -> bool:
        """Remove one message; False if there is no such message."""
        with self._lock:
            if not self._remove(key):
                return False
        self._tell("deleted", key)
        return True

    def delete_all(self) -> int:
        """Remove every message; how many went."""
        with self._lock:
            gone = sum(self._remove(key) for key in list(self._box.keys()))
        self._tell("cleared", None)
        return gone

    def _remove(self, key: str) -> bool:
        try:
            self._box.remove(key)
        except (KeyError, FileNotFoundError):  # gone already (deleted by another request)
            return False
        self._seen.discard(key)
        for message_id, held in list(self._by_message_id.items()):
            if held == key:
                del self._by_message_id[message_id]
        return True

    def _trim(self) -> None:
        """Over the cap: drop the oldest (by arrival) until it holds."""
        if not self.max_messages:
            return
        with self._lock:
            over = len(self._box) - self.max_messages
            if over <= 0:
                return
            by_age = sorted(self._box.keys(), key=self._arrival)
            dropped = [key for key in by_age[:over] if self._remove(key)]
        for key in dropped:
            self._tell("deleted", key)

    def _arrival(self, key: str) -> tuple[float, str]:
        path = self._path_of(key)
        return (path.stat().st_mtime if path is not None else 0.0, key)

    def _path_of(self, key: str) -> Path | None:
        if key not in self._box:  # only the Maildir's own keys: never `..` or a glob
            return None
        new = self.root / "new" / key
        if new.exists():
            return new
        found = [*sorted((self.root / "cur").glob(f"{key}{INFO}*")), self.root / "cur" / key]
        return next((p for p in found if p.exists()), None)

    def _tell(self, what: str, key: str | None) -> None:
        if self.on_change is not None:
            self.on_change(what, key)
