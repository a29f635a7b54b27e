"""The names of lifecycle events: one list for the event schema (`messages.py`) and for the
settings that name events (AUDIT_PUBLISHERS, parsed before any schema is loaded). It imports
nothing of ours, so the settings can use it without an import cycle."""

from __future__ import annotations

from typing import Literal, get_args

EventName = Literal[
    "job.submitted",
    "job.rejected",
    "job.started",
    "job.succeeded",
    "job.retrying",
    "job.failed",
    "job.dead",
    "job.replayed",
    "job.deleted",
    "key.created",
    "key.revoked",
]
EVENT_NAMES: tuple[str, ...] = get_args(EventName)
