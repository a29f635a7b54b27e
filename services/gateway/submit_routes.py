"""`POST /jobs/resize|render|mail`: validate, store the inputs, queue the job, answer 202."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.gateway.context import Gateway, GatewayDep
from services.gateway.idempotency import MAX_KEY_LENGTH, fingerprint
from services.gateway.rejections import Rejected, field_error, validation_error
from services.gateway.requests import (
    MailRequest,
    RenderRequest,
    check_follow_up,
    check_mail,
    job_params,
    parse_follow_up,
    parse_size,
)
from services.gateway.strictjson import StrictJSONRoute
from services.gateway.submit import Accepted
from services.gateway.uploads import store_image
from shared.messages import JOB_TYPES, FollowUp, Job, ResizeParams, new_id

# Bodies are parsed as strict JSON: NaN, Infinity and the like are a 422 (strictjson.py).
router = APIRouter(tags=["jobs"], route_class=StrictJSONRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="the same key with the same request answers the same job, once",
    ),
]
RESIZE_FIELDS = {"file", "width", "height", "fit", "format", "quality", "sizes", "then"}
_ACCEPTED_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {"description": "Idempotency-Key used for a different request"},
    413: {"description": "upload over MAX_UPLOAD_BYTES"},
    503: {"description": "the broker cannot take the job now (see Retry-After)"},
}


class JobAccepted(BaseModel):
    id: str
    status_url: str


async def _only_known_form_fields(request: Request) -> None:
    """Unknown multipart fields are an error (422 naming them), like unknown JSON fields."""
    form = await request.form()  # parsed once already; Starlette keeps it
    unknown = sorted(set(form.keys()) - RESIZE_FIELDS)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", name),
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )


def _answer(accepted: Accepted, response: Response) -> JobAccepted:
    status_url = f"/jobs/{accepted.job_id}"
    response.headers["Location"] = status_url
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return JobAccepted(id=accepted.job_id, status_url=status_url)


@router.post(
    "/jobs/resize",
    status_code=202,
    responses={**_ACCEPTED_RESPONSES, 415: {"description": "not a JPEG, PNG, WebP or GIF"}},
    dependencies=[Depends(_only_known_form_fields)],
)
def submit_resize(
    gateway: GatewayDep,
    response: Response,
    file: Annotated[UploadFile, File(description="the image: JPEG, PNG, WebP or GIF")],
    width: Annotated[int | None, Form(ge=1)] = None,
    height: Annotated[int | None, Form(ge=1)] = None,
    fit: Annotated[Literal["contain", "cover", "exact"], Form()] = "contain",
    format: Annotated[Literal["jpeg", "png", "webp"] | None, Form()] = None,
    quality: Annotated[int, Form(ge=1, le=95)] = 85,
    sizes: Annotated[
        list[str] | None, Form(description="a thumbnail set: repeat as 800x600, 800 or x600")
    ] = None,
    then: Annotated[str | None, Form(description="a follow-up job as JSON")] = None,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """Resize an uploaded image to `width`/`height`, or to each of several `sizes`."""
    boxes = [parse_size(text, i) for i, text in enumerate(sizes or [])]
    try:
        params = ResizeParams(
            width=width, height=height, fit=fit, format=format, quality=quality, sizes=boxes
        )
    except ValidationError as e:
        raise validation_error(e, "body") from None
    absurd = params.absurd_side(gateway.settings.max_output_side)
    if absurd is not None:
        raise field_error(absurd[0].split("."), absurd[1], "too_large")
    follow_up = parse_follow_up(then)
    check_follow_up(follow_up, gateway.mail_limits)

    job_id = new_id()
    settings = gateway.settings
    try:
        stored = store_image(
            file.file,
            gateway.blobs,
            job_id,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
    except OSError as e:  # the blob store is full or gone: our fault, not the client's
        raise Rejected(
            503, "blob_store_unavailable", f"cannot store the upload: {e.strerror or e}"
        ) from e
    job = Job(
        id=job_id, type="resize", params=job_params(params), inputs=[stored.key], then=follow_up
    )
    what = fingerprint("resize", job.params, _dump(follow_up), stored.sha256)
    return _answer(gateway.submitter.submit(job, what, idempotency_key), response)


@router.post("/jobs/render", status_code=202, responses=_ACCEPTED_RESPONSES)
def submit_render(
    gateway: GatewayDep,
    response: Response,
    body: RenderRequest,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """Render a PDF from a template (`document`, `invoice`, `report`) and its data."""
    check_follow_up(body.then, gateway.mail_limits)
    return _submit_json(gateway, response, "render", body, body.then, idempotency_key)


@router.post("/jobs/mail", status_code=202, responses=_ACCEPTED_RESPONSES)
def submit_mail(
    gateway: GatewayDep,
    response: Response,
    body: MailRequest,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    """Send an e-mail; `attachments` are ids of earlier jobs whose outputs are attached."""
    check_mail(body, gateway.mail_limits)
    check_follow_up(body.then, gateway.mail_limits)
    return _submit_json(gateway, response, "mail", body, body.then, idempotency_key)


@router.post(
    "/jobs/{job_type}",
    status_code=404,
    include_in_schema=False,
    responses={404: {"description": "no such job type"}},
)
def unknown_job_type(job_type: str) -> None:
    """Without it a POST to /jobs/<anything> is a bare 405 (GET /jobs/{id} owns the path)."""
    known = ", ".join(f"/jobs/{t}" for t in JOB_TYPES)
    raise Rejected(404, "unknown_job_type", f"unknown job type: POST to one of {known}")


def _submit_json(
    gateway: Gateway,
    response: Response,
    job_type: Literal["render", "mail"],
    request: BaseModel,
    then: FollowUp | None,
    key: str | None,
) -> JobAccepted:
    job = Job(type=job_type, params=job_params(request), then=then)
    what = fingerprint(job_type, job.params, _dump(then))
    return _answer(gateway.submitter.submit(job, what, key), response)


def _dump(then: FollowUp | None) -> dict[str, object]:
    return then.model_dump(mode="json") if then else {}
