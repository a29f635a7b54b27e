"""What the gateway accepts: the params models of shared/messages.py, checked a little harder.

Mail addresses and header values go through `shared.mailaddr` (no CR/LF, one address per
entry); render data is checked against its template's model where one exists; a follow-up
(`then`) is checked with the model of its own job type, so a bad follow-up is refused now
rather than failing later in a worker.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from services.gateway import strictjson
from services.gateway.rejections import field_error, validation_error
from shared.config import Settings
from shared.mailaddr import check_header_value, check_recipient_count, validate_address
from shared.messages import (
    UUID_PATTERN,
    FollowUp,
    InvoiceData,
    MailParams,
    RenderParams,
    ResizeParams,
    Size,
)

Address = Annotated[str, AfterValidator(validate_address)]
HeaderText = Annotated[str, AfterValidator(check_header_value)]
_UUID = re.compile(UUID_PATTERN)


def _job_id(value: str) -> str:
    if not _UUID.fullmatch(value):  # not match(): its `$` lets a final newline through
        raise ValueError("must be the id of an earlier job (a UUID)")
    return value


JobId = Annotated[str, AfterValidator(_job_id)]
MAX_FOLLOW_UPS = 5
# The renderer's templates whose `data` has a schema in shared/messages.py.
TEMPLATE_DATA: dict[str, type[BaseModel]] = {"invoice": InvoiceData}
_SIZE = re.compile(r"^(?P<w>[1-9]\d{0,4})?(?:x(?P<h>[1-9]\d{0,4})?)?$")


class CheckedRenderParams(RenderParams):
    @field_validator("data")
    @classmethod
    def _data_fits_its_template(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        model = TEMPLATE_DATA.get(info.data.get("template", ""))
        if model is not None:
            try:
                model.model_validate(data)
            except ValidationError as e:
                first = e.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from None
        return data


class CheckedMailParams(MailParams):
    to: list[Address] = Field(min_length=1)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    subject: HeaderText = Field(max_length=998)
    attachments: list[JobId] = Field(default_factory=list, description="ids of earlier jobs")


class RenderRequest(CheckedRenderParams):
    """`POST /jobs/render`: a template, its data, and optionally a follow-up job."""

    then: FollowUp | None = None


class MailRequest(CheckedMailParams):
    """`POST /jobs/mail`: recipients, subject, body, attachments (ids of earlier jobs)."""

    then: FollowUp | None = None


PARAMS_MODELS: dict[str, type[BaseModel]] = {
    "resize": ResizeParams,
    "render": CheckedRenderParams,
    "mail": CheckedMailParams,
}


def job_params(request: BaseModel) -> dict[str, Any]:
    """The params a job message carries for a request (its follow-up travels apart)."""
    return request.model_dump(mode="json", exclude={"then"}, exclude_none=True)


@dataclass(frozen=True)
class MailLimits:
    max_recipients: int  # MAX_RECIPIENTS
    max_bytes: int  # MAX_MAIL_BYTES: text, html and attachments together

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        return cls(settings.max_recipients, settings.max_mail_bytes)


def check_mail(params: CheckedMailParams, limits: MailLimits, *where: str) -> None:
    try:
        check_recipient_count(limits.max_recipients, params.to, params.cc, params.bcc)
    except ValueError as e:
        raise field_error((*where, "to"), str(e), "too_many_recipients") from None
    if params.body_bytes > limits.max_bytes:  # the mailer would refuse it, later
        field = "text" if params.text else "html"
        message = (
            f"text and html come to {params.body_bytes} bytes, over the limit of "
            f"{limits.max_bytes} for a whole mail (MAX_MAIL_BYTES)"
        )
        raise field_error((*where, field), message, "too_large")


def check_follow_up(then: FollowUp | None, limits: MailLimits) -> None:
    """Validate each follow-up's params with its job type's model; 422 naming the field."""
    where: tuple[str, ...] = ("then",)
    depth = 0
    while then is not None:
        depth += 1
        if depth > MAX_FOLLOW_UPS:
            raise field_error(where, f"at most {MAX_FOLLOW_UPS} follow-up jobs in a chain")
        try:
            params = PARAMS_MODELS[then.type].model_validate(then.params)
        except ValidationError as e:
            raise validation_error(e, "body", *where, "params") from None
        if isinstance(params, CheckedMailParams):
            check_mail(params, limits, *where, "params")
        then, where = then.then, (*where, "then")


def parse_size(text: str, index: int) -> Size:
    """`800x600`, `800` (width only) or `x600` (height only), as in a `sizes` form field."""
    match = _SIZE.match(text.strip())
    if not match or not (match["w"] or match["h"]):
        raise field_error(("sizes", index), "must be WIDTHxHEIGHT, WIDTH or xHEIGHT, e.g. 800x600")
    width, height = match["w"], match["h"]
    return Size(width=int(width) if width else None, height=int(height) if height else None)


def parse_follow_up(text: str | None) -> FollowUp | None:
    """The `then` form field of a multipart request: a follow-up job as JSON."""
    if text is None or not text.strip():
        return None
    try:
        return FollowUp.model_validate(strictjson.loads(text))
    except json.JSONDecodeError as e:
        raise field_error(("then",), f"not JSON: {e}") from None
    except ValidationError as e:
        raise validation_error(e, "body", "then") from None
