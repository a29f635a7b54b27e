"""Reading a dead letter: the original job body plus the broker's `x-death` headers.

Used by the audit service (each dead letter in `audit.dead` becomes a `job.dead` event) and by
`jobsuite dlq` (the same message's copy in `jobs.dead`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.audit.lifecycle import as_utc
from shared.errors import DecodeError
from shared.messages import ErrorInfo, Event, Job, decode_job, utc_now
from shared.tracecontext import trace_id_for

# Fixed, so the same dead letter delivered twice gets the same event id (recorded once, and
# announced on `events` under that id).
_DEAD_EVENT_NS = uuid.UUID("9d3c6a56-2f4e-4c8e-9a53-6b1f0f7d2a11")


@dataclass(frozen=True)
class DeadLetter:
    job: Job | None  # None when the body is not a valid job
    job_id: str
    type: str
    reason: str  # rejected | expired | delivery_limit | maxlen | unknown
    queue: str
    count: int
    died_at: datetime | None
    first_reason: str | None
    body_error: str | None
    trace_id: str | None = None  # the job's (shared/tracecontext.py), for its `job.dead`

    def summary(self) -> str:
        times = f" ({self.count}x)" if self.count > 1 else ""
        return f"dead-lettered from {self.queue or 'an unknown queue'}: {self.reason}{times}"


def read_dead_letter(
    body: bytes, headers: dict[str, Any], message_id: str | None, message_type: str | None
) -> DeadLetter:
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    latest = deaths[0] if deaths else {}  # the broker keeps the latest death first
    reason = _text(headers.get("x-last-death-reason")) or _text(latest.get("reason"))
    queue = _text(headers.get("x-last-death-queue")) or _text(latest.get("queue"))
    count = latest.get("count", 1)
    died_at = latest.get("time")
    job: Job | None = None
    body_error: str | None = None
    try:
        job = decode_job(body)
    except DecodeError as e:
        body_error = str(e)
    job_id = job.id if job else (message_id or _body_field(body, "id") or _unknown_id(body))
    return DeadLetter(
        job=job,
        job_id=job_id,
        type=job.type if job else (message_type or _body_field(body, "type") or "unknown"),
        reason=reason or "unknown",
        queue=queue or "",
        count=count if isinstance(count, int) and count > 0 else 1,
        died_at=as_utc(died_at) if isinstance(died_at, datetime) else None,
        first_reason=_text(headers.get("x-first-death-reason")),
        body_error=body_error,
        trace_id=trace_id_for(job_id, job.trace_id if job else None, headers),
    )


def dead_event(dead: DeadLetter, body: bytes, service: str, instance: str) -> Event:
    """The `job.dead` event for a dead letter. Its `at` is never before the job's own
    `submitted_at`: the broker's death time has whole seconds only, and a replayed job's
    `submitted_at` marks its new epoch (see lifecycle.py).

    Its id is one death's: the job (its body: id, attempt and `submitted_at`, which a replay
    renews), the reason, the queue and the broker's count. Not the time: the broker may
    dead-letter one message twice at-least-once, and each copy can carry another second."""
    moments = [m for m in (dead.died_at, dead.job and as_utc(dead.job.submitted_at)) if m]
    fingerprint = "|".join(
        (dead.job_id, hashlib.sha256(body).hexdigest(), dead.reason, dead.queue, str(dead.count))
    )
    message = dead.summary() + (f"; {dead.body_error}" if dead.body_error else "")
    return Event(
        event_id=str(uuid.uuid5(_DEAD_EVENT_NS, fingerprint)),
        event="job.dead",
        job_id=dead.job_id,
        type=dead.type,
        service=service,
        instance=instance,
        at=max(moments) if moments else utc_now(),
        attempt=dead.job.attempt if dead.job else 1,
        parent_id=dead.job.parent_id if dead.job else None,
        client=dead.job.client if dead.job else None,
        error=ErrorInfo(kind=dead.reason, message=message),
        trace_id=dead.trace_id,
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _body_field(body: bytes, name: str) -> str | None:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # a client can dead-letter `[[[…]]]` 3000 deep
        return None
    value = obj.get(name) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


def _unknown_id(body: bytes) -> str:
    return "unknown-" + hashlib.sha256(body).hexdigest()[:16]
