"""Idempotency-Key: what makes two requests "the same request".

The key's reservations live in the shared state (`shared/state/submissions.py`); here is the
gateway's own part: how long a key may be, and a request's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Keyed:
    """A request's Idempotency-Key, as its caller's own, and how to work out the request's
    fingerprint: only once the key is reserved, since an upload's hashes every byte."""

    key: str
    fingerprint: Callable[[], str]


def fingerprint(route: str, *parts: bytes | str | dict[str, object]) -> str:
    """A digest of what a request asked for: same request, same fingerprint."""
    digest = hashlib.sha256(route.encode())
    for part in parts:
        if isinstance(part, dict):
            part = json.dumps(part, sort_keys=True, separators=(",", ":"), default=str)
        digest.update(b"\x00" + (part.encode() if isinstance(part, str) else part))
    return digest.hexdigest()
