"""Job and event ids: random UUIDs, except a follow-up's, which its parent's id decides."""

from __future__ import annotations

import os
import re
import uuid

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = re.compile(UUID_PATTERN)


def new_id() -> str:
    """A random (version 4) UUID as `str(uuid.uuid4())` writes it, made from the 16 random
    bytes directly: uuid.UUID's object costs twice as much, and every job and event takes
    one (two per job in the gateway, one per event in the workers)."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def follow_up_id(parent_id: str) -> str:
    """The follow-up's id is derived from its parent's, so a redelivered parent
    publishes the same follow-up job again instead of a second one."""
    return str(uuid.uuid5(uuid.UUID(parent_id), "then"))


def is_job_id(value: str) -> bool:
    """A lower-case UUID, whole (fullmatch: `$` alone would let a final newline through)."""
    return _UUID.fullmatch(value) is not None
