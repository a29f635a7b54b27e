"""Job and event ids: random UUIDs, except a follow-up's, which its parent's id decides."""

from __future__ import annotations

import re
import uuid

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = re.compile(UUID_PATTERN)


def new_id() -> str:
    return str(uuid.uuid4())


def follow_up_id(parent_id: str) -> str:
    """The follow-up's id is derived from its parent's, so a redelivered parent
    publishes the same follow-up job again instead of a second one."""
    return str(uuid.uuid5(uuid.UUID(parent_id), "then"))


def is_job_id(value: str) -> bool:
    """A lower-case UUID, whole (fullmatch: `$` alone would let a final newline through)."""
    return _UUID.fullmatch(value) is not None
