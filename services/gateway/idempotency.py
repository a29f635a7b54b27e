"""Idempotency-Key: what makes two requests "the same request".

The key's reservations live in the shared state (`shared/state/submissions.py`); here is the
gateway's own part: how long a key may be, and a request's fingerprint.
"""

from __future__ import annotations

import hashlib
import json

MAX_KEY_LENGTH = 255


def fingerprint(route: str, *parts: bytes | str | dict[str, object]) -> str:
    """A digest of what a request asked for: same request, same fingerprint."""
    digest = hashlib.sha256(route.encode())
    for part in parts:
        if isinstance(part, dict):
            part = json.dumps(part, sort_keys=True, separators=(",", ":"), default=str)
        digest.update(b"\x00" + (part.encode() if isinstance(part, str) else part))
    return digest.hexdigest()
