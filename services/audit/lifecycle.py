"""A job's state from its events, in lifecycle order rather than arrival order (pure).

Events of one job are sorted by (epoch, attempt, phase):
- phase: submitted < started < retrying < succeeded | failed | rejected < dead, so a late
  `job.started` never overwrites a `job.succeeded` of the same attempt, and the `job.dead`
  that follows a `job.failed` (the worker rejects after publishing it) wins, keeping the
  failure's error;
- attempt: a retried job goes started(1) → retrying(1) → started(2) → …;
- epoch: `jobsuite dlq replay` puts a dead job back with attempt 1 and a `job.replayed`
  event whose `at` is the replayed job's new `submitted_at`. Events at or after it belong
  to the next epoch: the job is open again (status `submitted`), its attempts keep counting.
  (Epochs compare the producers' clocks: fine on one host or NTP-synced hosts.)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from shared.messages import ErrorInfo, Event, JobStatus

_PHASE = {
    "job.replayed": -1,
    "job.submitted": 0,
    "job.started": 1,
    "job.retrying": 2,
    "job.succeeded": 3,
    "job.failed": 3,
    "job.rejected": 3,
    "job.dead": 4,
    "job.deleted": 5,  # its blobs deleted (DELETE /jobs/{id}): the status stays
}
_TRIED = {"job.started", "job.retrying", "job.succeeded", "job.failed"}
E = TypeVar("E", bound=Event)


@dataclass
class JobState:
    id: str
    type: str = "unknown"
    status: JobStatus = "submitted"
    attempts: int = 0
    parent_id: str | None = None
    client: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    error: ErrorInfo | None = None
    dead_reason: str | None = None
    replays: int = 0
    outputs: list[str] = field(default_factory=list)


def as_utc(moment: datetime) -> datetime:
    """Producers should send aware UTC times; a naive one is taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def lifecycle_order(events: Sequence[E]) -> list[E]:
    """The events sorted into the order they happened in (a stable sort: ties keep arrival)."""
    replays = sorted(as_utc(e.at) for e in events if e.event == "job.replayed")

    def key(e: Event) -> tuple[int, int, int]:
        epoch = bisect.bisect_right(replays, as_utc(e.at))
        if e.event == "job.replayed":
            return epoch, 0, _PHASE[e.event]
        return epoch, e.attempt, _PHASE.get(e.event, 0)

    return sorted(events, key=key)


def fold(job_id: str, events: Sequence[Event]) -> JobState:
    """The state of a job after all of its events (given in arrival order)."""
    state = JobState(id=job_id)
    tried: dict[int, int] = {}  # epoch -> highest attempt seen
    epoch = 0
    for e in lifecycle_order(events):
        state.type = e.type if state.type == "unknown" else state.type
        state.parent_id = state.parent_id or e.parent_id
        state.client = state.client or e.client
        at = as_utc(e.at)
        if e.event == "job.replayed":
            epoch += 1
            _reopen(state)
        elif e.event == "job.submitted":
            state.status = "submitted"
            state.submitted_at = min(filter(None, (state.submitted_at, at)))
        elif e.event == "job.started":
            state.status = "started"
            state.started_at = state.started_at or at
        elif e.event == "job.retrying":
            state.status = "retrying"
            state.error = e.error
        elif e.event == "job.succeeded":
            _finish(state, e, at, "succeeded")
            state.error = None
            state.outputs = list(e.outputs or [])
        elif e.event in ("job.failed", "job.rejected"):
            # A refused submission never ran: its own status, not counted as a failed job.
            _finish(state, e, at, "failed" if e.event == "job.failed" else "rejected")
            state.error = e.error
        elif e.event == "job.dead":
            state.status = "dead"
            state.finished_at = state.finished_at or at
            state.dead_reason = e.error.kind if e.error else "unknown"
            state.error = state.error or e.error
        if e.event in _TRIED:
            tried[epoch] = max(tried.get(epoch, 0), e.attempt)
    state.attempts = sum(tried.values())
    state.replays = epoch
    return state


def _finish(state: JobState, e: Event, at: datetime, status: JobStatus) -> None:
    state.status = status
    state.finished_at = at
    if e.duration_ms is not None:
        state.duration_ms = e.duration_ms


def _reopen(state: JobState) -> None:
    state.status = "submitted"
    state.started_at = state.finished_at = None
    state.duration_ms = None
    state.error = None
    state.dead_reason = None
    state.outputs = []
