"""The job and event schemas: the one contract between the services (version "v": 1).

Jobs travel on the `jobs` exchange, events on the `events` fanout. Both are JSON. Decoding
failures become `DecodeError`. A job's `params` are validated by the handler that runs it,
with its job type's model (`shared/jobtypes/`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from shared.errors import DecodeError
from shared.event_names import EventName
from shared.ids import UUID_PATTERN, follow_up_id, new_id
from shared.jobtypes import JobTypeName
from shared.jobtypes.models import Strict, first_error, of_json_type
from shared.tracecontext import TRACE_ID_PATTERN

SCHEMA_VERSION: Literal[1] = 1
KEY_EVENTS = ("key.created", "key.revoked")
KEY_SUBJECT_PREFIX = "key:"
"""A key event's `job_id` is `key:<name>` and its `type` is `key`: events about API keys keep
the one Event shape and the chain, and the audit's job read model leaves them out."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _from_iso_text(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# Strict models take a datetime only as an ISO 8601 string from JSON (never a number); in
# Python (a record read back as a dict) the same string is parsed here.
Timestamp = Annotated[datetime, BeforeValidator(_from_iso_text)]


class FollowUp(Strict):
    type: JobTypeName
    params: dict[str, Any] = Field(default_factory=dict)
    then: FollowUp | None = None


def follow_ups(then: FollowUp | None) -> Iterator[tuple[tuple[str, ...], FollowUp]]:
    """Each follow-up of a chain with the place it sits at in the job: `("then",)`,
    `("then", "then")`, …"""
    where: tuple[str, ...] = ("then",)
    while then is not None:
        yield where, then
        then, where = then.then, (*where, "then")


class Job(Strict):
    v: Annotated[Literal[1], of_json_type(int)] = SCHEMA_VERSION
    id: str = Field(default_factory=new_id, pattern=UUID_PATTERN)
    type: JobTypeName
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)
    then: FollowUp | None = None
    parent_id: str | None = None
    submitted_at: Timestamp = Field(default_factory=utc_now)
    attempt: int = Field(default=1, ge=1)
    client: str | None = None  # the name of the API key that submitted it; None: admin-only
    # The pipeline's W3C trace id (shared/tracecontext.py); a worker gives one to a job
    # without it.
    trace_id: str | None = Field(default=None, pattern=TRACE_ID_PATTERN)

    def follow_up(self, outputs: list[str]) -> Job | None:
        """The job to run next with this job's outputs as its inputs, if any."""
        if self.then is None:
            return None
        return Job(
            id=follow_up_id(self.id),
            type=self.then.type,
            params=self.then.params,
            inputs=outputs,
            then=self.then.then,
            parent_id=self.id,
            client=self.client,
            trace_id=self.trace_id,
        )

    def next_attempt(self) -> Job:
        return self.model_copy(update={"attempt": self.attempt + 1})


class ErrorInfo(Strict):
    kind: str
    message: str


class Event(Strict):
    v: Annotated[Literal[1], of_json_type(int)] = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_id)
    event: EventName
    job_id: str
    type: str
    service: str
    instance: str
    at: Timestamp = Field(default_factory=utc_now)
    attempt: int = 1
    parent_id: str | None = None
    duration_ms: float | None = None
    outputs: list[str] | None = None
    error: ErrorInfo | None = None
    client: str | None = None  # the job's client; for key events, the key's name
    trace_id: str | None = Field(default=None, pattern=TRACE_ID_PATTERN)  # the job's trace

    @property
    def about_key(self) -> bool:
        return self.event in KEY_EVENTS


class RecordedEvent(Event):
    """An event as the audit recorded it. Not on the wire (an event claiming these fields
    does not decode): the audit adds them from the message's envelope and its policy."""

    publisher: str | None = Field(
        default=None, description="the broker user that published it (AMQP user_id); null: none"
    )
    refused: str | None = Field(
        default=None,
        description="why the audit did not believe it (AUDIT_PUBLISHERS); it is kept as"
        " evidence but does not change the job's status",
    )


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


# Fields a job on the wire must carry itself: defaults would invent an identity for it.
_REQUIRED_ON_THE_WIRE = ("v", "id", "type")


def decode_job(body: bytes) -> Job:
    try:
        job = Job.model_validate_json(body)
    except ValidationError as e:
        raise DecodeError(f"not a valid job: {first_error(e)}") from None
    missing = [f for f in _REQUIRED_ON_THE_WIRE if f not in job.model_fields_set]
    if missing:
        raise DecodeError(f"not a valid job: {', '.join(missing)}: Field required")
    return job


def decode_event(body: bytes) -> Event:
    try:
        return Event.model_validate_json(body)
    except ValidationError as e:
        raise DecodeError(f"not a valid event: {first_error(e)}") from None


# `rejected`: a submission the gateway refused (its `job.rejected`); never a job that ran.
JobStatus = Literal["submitted", "started", "retrying", "succeeded", "failed", "rejected", "dead"]


class JobRecord(BaseModel):
    """A job as the audit read model reports it (`GET /jobs/{id}` of audit and gateway)."""

    model_config = ConfigDict(cache_strings="keys")  # as Strict's: its values are all new

    id: str
    type: str
    status: JobStatus
    attempts: int = 0
    parent_id: str | None = None
    client: str | None = Field(default=None, description="the API key that submitted it")
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    error: ErrorInfo | None = None
    outputs: list[str] = Field(default_factory=list)
    events: list[RecordedEvent] = Field(default_factory=list)
    dead_reason: str | None = Field(
        default=None, description="why the broker dead-lettered it: rejected, expired, …"
    )
    replays: int = Field(default=0, description="how often `jobsuite dlq replay` re-opened it")
    deleted_at: datetime | None = Field(
        default=None,
        description="when its inputs and outputs were deleted (DELETE /jobs/{id}); null: never",
    )
