"""The job and event schemas: the one contract between the services (version "v": 1).

Jobs travel on the `jobs` exchange, events on the `events` fanout. Both are JSON. Decoding
failures become `DecodeError`; handlers validate their own `params` with the models here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.errors import DecodeError

SCHEMA_VERSION = 1
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
JobType = Literal["resize", "render", "mail"]
JOB_TYPES: tuple[str, ...] = ("resize", "render", "mail")
EventName = Literal[
    "job.submitted",
    "job.rejected",
    "job.started",
    "job.succeeded",
    "job.retrying",
    "job.failed",
    "job.dead",
    "job.replayed",
]
_ParamsT = TypeVar("_ParamsT", bound=BaseModel)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def follow_up_id(parent_id: str) -> str:
    """The follow-up's id is derived from its parent's, so a redelivered parent
    publishes the same follow-up job again instead of a second one."""
    return str(uuid.uuid5(uuid.UUID(parent_id), "then"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FollowUp(_Strict):
    type: JobType
    params: dict[str, Any] = Field(default_factory=dict)
    then: FollowUp | None = None


class Job(_Strict):
    v: Literal[1] = SCHEMA_VERSION
    id: str = Field(default_factory=new_id, pattern=UUID_PATTERN)
    type: JobType
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)
    then: FollowUp | None = None
    parent_id: str | None = None
    submitted_at: datetime = Field(default_factory=utc_now)
    attempt: int = Field(default=1, ge=1)

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
        )

    def next_attempt(self) -> Job:
        return self.model_copy(update={"attempt": self.attempt + 1})


class ErrorInfo(_Strict):
    kind: str
    message: str


class Event(_Strict):
    v: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_id)
    event: EventName
    job_id: str
    type: str
    service: str
    instance: str
    at: datetime = Field(default_factory=utc_now)
    attempt: int = 1
    parent_id: str | None = None
    duration_ms: float | None = None
    outputs: list[str] | None = None
    error: ErrorInfo | None = None


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


# Fields a job on the wire must carry itself: defaults would invent an identity for it.
_REQUIRED_ON_THE_WIRE = ("v", "id", "type")


def decode_job(body: bytes) -> Job:
    try:
        job = Job.model_validate_json(body)
    except ValidationError as e:
        raise DecodeError(f"not a valid job: {_first_error(e)}") from None
    missing = [f for f in _REQUIRED_ON_THE_WIRE if f not in job.model_fields_set]
    if missing:
        raise DecodeError(f"not a valid job: {', '.join(missing)}: Field required")
    return job


def decode_event(body: bytes) -> Event:
    try:
        return Event.model_validate_json(body)
    except ValidationError as e:
        raise DecodeError(f"not a valid event: {_first_error(e)}") from None


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    message = err["msg"].removeprefix("Value error, ")
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {message}" if where else message


# --- job parameters -------------------------------------------------------------------


class Size(_Strict):
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_side_at_least(self) -> Size:
        if self.width is None and self.height is None:
            raise ValueError("give width, height or both")
        return self


class ResizeParams(_Strict):
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    fit: Literal["contain", "cover", "exact"] = "contain"
    format: Literal["jpeg", "png", "webp"] | None = None
    quality: int = Field(default=85, ge=1, le=95)
    sizes: list[Size] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _some_size(self) -> ResizeParams:
        if self.sizes and (self.width is not None or self.height is not None):
            raise ValueError("give either width/height or sizes, not both")
        if not self.sizes and self.width is None and self.height is None:
            raise ValueError("give width, height or sizes")
        return self

    def boxes(self) -> list[Size]:
        """Every requested size, the single one included."""
        return list(self.sizes) or [Size(width=self.width, height=self.height)]

    def absurd_side(self, max_side: int) -> tuple[str, str] | None:
        """(field, reason) of the first requested side over `max_side` (MAX_OUTPUT_SIDE):
        gateway and resizer refuse it before any pixel is decoded."""
        if self.sizes:
            sides = [
                (f"sizes.{i}.{name}", getattr(box, name))
                for i, box in enumerate(self.sizes)
                for name in ("width", "height")
            ]
        else:
            sides = [("width", self.width), ("height", self.height)]
        for field, value in sides:
            if value is not None and value > max_side:
                return field, f"{value} is absurd: a side may be at most {max_side} pixels"
        return None


def parse_params(model: type[_ParamsT], params: dict[str, Any]) -> _ParamsT:
    """Validate a job's params; the caller turns the DecodeError into a PermanentJobError."""
    try:
        return model.model_validate(params)
    except ValidationError as e:
        raise DecodeError(f"invalid params: {_first_error(e)}") from None


Decimal = Annotated[str, Field(pattern=r"^-?\d{1,12}(\.\d{1,6})?$")]
"""Money and rates travel as decimal strings, never floats."""


class Party(_Strict):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=1000)


class InvoiceItem(_Strict):
    description: str = Field(min_length=1, max_length=500)
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal = "0"


class InvoiceData(_Strict):
    seller: Party
    buyer: Party
    items: list[InvoiceItem] = Field(min_length=1)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    number: str = Field(min_length=1, max_length=64)
    issue_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    due_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class RenderParams(_Strict):
    """`data` is validated per template by the renderer (InvoiceData for `invoice`)."""

    template: Literal["document", "invoice", "report"]
    data: dict[str, Any] = Field(default_factory=dict)
    page_size: Literal["A4", "Letter"] = "A4"
    title: str | None = Field(default=None, max_length=300)
    author: str | None = Field(default=None, max_length=300)
    subject: str | None = Field(default=None, max_length=300)
    # Every side; the header and footer sit inside the top and bottom margins.
    margin_mm: float = Field(default=20, ge=10, le=50)


class MailParams(_Strict):
    """Addresses are checked again by the mailer (one address each, no CR/LF)."""

    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = Field(max_length=998)
    text: str | None = None
    html: str | None = None
    attachments: list[str] = Field(default_factory=list, description="ids of earlier jobs")

    @property
    def body_bytes(self) -> int:
        """text and html in UTF-8: with the attachments, what MAX_MAIL_BYTES bounds."""
        return sum(len(part.encode()) for part in (self.text, self.html) if part)

    @model_validator(mode="after")
    def _some_body(self) -> MailParams:
        if self.text is None and self.html is None:
            raise ValueError("give text, html or both")
        return self


JobStatus = Literal["submitted", "started", "retrying", "succeeded", "failed", "dead"]


class JobRecord(BaseModel):
    """A job as the audit read model reports it (`GET /jobs/{id}` of audit and gateway)."""

    id: str
    type: str
    status: JobStatus
    attempts: int = 0
    parent_id: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    error: ErrorInfo | None = None
    outputs: list[str] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    dead_reason: str | None = Field(
        default=None, description="why the broker dead-lettered it: rejected, expired, …"
    )
    replays: int = Field(default=0, description="how often `jobsuite dlq replay` re-opened it")
