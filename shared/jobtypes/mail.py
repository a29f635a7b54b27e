"""The `mail` job type: one mail to its recipients, with the outputs of earlier jobs attached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema, model_validator

from shared.config import Settings
from shared.ids import UUID_PATTERN, is_job_id
from shared.jobtypes.models import Strict
from shared.jobtypes.spec import CliOption, JobTypeSpec, ParamsRefused
from shared.mailaddr import (
    ADDRESS_PATTERN,
    HEADER_VALUE_PATTERN,
    check_header_value,
    check_recipient_count,
    parse_address,
    validate_address,
)
from shared.mailpolicy import RESERVED_ONLY, DomainPolicy


class MailParams(Strict):
    """Addresses are checked again by the mailer (one address each, no CR/LF)."""

    # In the OpenAPI document too: text, html or both, each a string.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [part], "properties": {part: {"type": "string"}}}
                for part in ("text", "html")
            ]
        }
    )
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


def _job_id(value: str) -> str:
    if not is_job_id(value):
        raise ValueError("must be the id of an earlier job (a UUID)")
    return value


# Each with its rule as a pattern for the OpenAPI document; the validator stays the judge.
Address = Annotated[
    str,
    AfterValidator(validate_address),
    WithJsonSchema({"type": "string", "pattern": ADDRESS_PATTERN}),
]
HeaderText = Annotated[
    str,
    AfterValidator(check_header_value),
    WithJsonSchema({"type": "string", "pattern": HEADER_VALUE_PATTERN, "maxLength": 998}),
]
JobId = Annotated[
    str, AfterValidator(_job_id), WithJsonSchema({"type": "string", "pattern": UUID_PATTERN})
]


class CheckedMailParams(MailParams):
    """What the gateway accepts: one plain address per entry, nothing that could start a
    header, attachments that are job ids."""

    to: list[Address] = Field(min_length=1)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    subject: HeaderText = Field(max_length=998)
    attachments: list[JobId] = Field(default_factory=list, description="ids of earlier jobs")


@dataclass(frozen=True)
class MailLimits:
    max_recipients: int  # MAX_RECIPIENTS: to, cc and bcc together
    max_bytes: int  # MAX_MAIL_BYTES: text, html and attachments together
    max_attachments: int = 20  # MAX_ATTACHMENTS: job ids in `attachments`
    allowed: DomainPolicy = RESERVED_ONLY  # MAIL_ALLOWED_DOMAINS

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        return cls(
            settings.max_recipients,
            settings.max_mail_bytes,
            settings.max_attachments,
            DomainPolicy(settings.mail_allowed_domains),
        )


def check_mail(params: MailParams, limits: MailLimits) -> None:
    """Too many recipients or attachments, an attachment listed twice, or text and html over
    the size of a whole mail."""
    try:
        check_recipient_count(limits.max_recipients, params.to, params.cc, params.bcc)
    except ValueError as e:
        raise ParamsRefused(("to",), str(e), "too_many_recipients") from None
    check_attachments(params.attachments, limits.max_attachments)
    if params.body_bytes > limits.max_bytes:  # the mailer would refuse it, later
        field = "text" if params.text else "html"
        message = (
            f"text and html come to {params.body_bytes} bytes, over the limit of "
            f"{limits.max_bytes} for a whole mail (MAX_MAIL_BYTES)"
        )
        raise ParamsRefused((field,), message, "too_large")


def check_attachments(job_ids: list[str], limit: int) -> None:
    """Each id once (a listed id would be attached once per listing), at most `limit`."""
    first: dict[str, int] = {}
    for index, job_id in enumerate(job_ids):
        seen = first.setdefault(job_id.lower(), index)
        if seen != index:
            message = f"job {job_id!r} is listed twice (at {seen} and {index}): list each once"
            raise ParamsRefused(("attachments", index), message, "duplicate_attachment")
    if len(job_ids) > limit:
        message = f"{len(job_ids)} attachments, over the limit of {limit} (MAX_ATTACHMENTS)"
        raise ParamsRefused(("attachments",), message, "too_many_attachments")


def check_recipients_allowed(params: MailParams, limits: MailLimits) -> None:
    """Every recipient (to, cc, bcc) in a domain MAIL_ALLOWED_DOMAINS allows. An entry that
    is not one address is left to the address checks, which refuse it on their own."""
    for field in ("to", "cc", "bcc"):
        for index, entry in enumerate(getattr(params, field)):
            try:
                _, address = parse_address(entry)
            except ValueError:
                continue
            if not limits.allowed.allows(address):
                domain = address.rpartition("@")[2]
                message = (
                    f"mail to {address} is not allowed: its domain {domain} is "
                    f"{limits.allowed.describe()}"
                )
                raise ParamsRefused((field, index), message, "recipient_not_allowed")


MAIL: JobTypeSpec[MailParams, MailLimits] = JobTypeSpec(
    name="mail",
    service="mailer",
    summary="Send an e-mail; `attachments` are ids of earlier jobs whose outputs are attached.",
    params=MailParams,
    request=CheckedMailParams,
    limits=MailLimits.from_settings,
    check=check_mail,
    policy=check_recipients_allowed,
    cli=(
        CliOption("--to", "to", "a recipient: repeat for several", many=True, required=True),
        CliOption("--subject", "subject", "the subject line", required=True),
        CliOption("--text", "text", "the plain-text body"),
        CliOption("--text-file", "text", "the plain-text body from a file", reads="text_file"),
        CliOption("--html-file", "html", "the HTML body from a file", reads="text_file"),
        CliOption("--cc", "cc", "a copy recipient: repeatable", many=True),
        CliOption("--bcc", "bcc", "a blind copy recipient: repeatable", many=True),
        CliOption(
            "--attach", "attachments", "attach the outputs of this job id: repeatable", many=True
        ),
    ),
)
