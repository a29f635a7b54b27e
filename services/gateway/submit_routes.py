"""`POST /jobs/<type>` for every declared job type: validate, store the inputs, queue the job,
answer 202. Built from the declarations in shared/jobtypes: a JSON body of the type's params
and `then`, or, for a type that takes an upload, a multipart form (services/gateway/forms.py).
"""

# No `from __future__ import annotations` here: FastAPI reads each endpoint's annotations,
# and those name models built per job type inside the factories below, which a string
# annotation could not reach.

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, UploadFile
from pydantic import BaseModel, create_model
from starlette.concurrency import run_in_threadpool

from services.gateway.checks import (
    check_follow_up,
    check_params,
    check_policy,
    job_params,
    parse_follow_up,
)
from services.gateway.context import Gateway, gateway_of
from services.gateway.forms import (
    FORM_MODELS,
    list_fields,
    params_from_form,
    read_form_model,
    request_body,
)
from services.gateway.idempotency import MAX_KEY_LENGTH, Keyed, fingerprint
from services.gateway.keychecks import check_job, mails_in
from services.gateway.multipart import request_form
from services.gateway.rejections import Rejected
from services.gateway.submit import Accepted, AsyncPublish
from services.gateway.tracing import request_trace
from services.gateway.uploads import StoredUpload, read_image, store_image, upload_not_stored
from shared import tracecontext
from shared.auth import Caller, caller_of
from shared.errors import BlobError
from shared.ids import new_id
from shared.jobtypes import JOB_TYPE_NAMES, JOB_TYPES, JobTypeSpec
from shared.messages import FollowUp, Job
from shared.strict_request import StrictJSONRoute
from shared.tracecontext import TraceParent

# Bodies are read strictly: NaN, duplicate keys, lone surrogates (strict_request.py), a
# truncated or repeated form field (multipart.py) are refused with their place.
router = APIRouter(tags=["jobs"], route_class=StrictJSONRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="the same key with the same request answers the same job, once",
    ),
]
_ACCEPTED_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "a mail recipient outside MAIL_ALLOWED_DOMAINS"},
    409: {"description": "Idempotency-Key used for a different request"},
    413: {"description": "upload over MAX_UPLOAD_BYTES"},
    503: {"description": "the broker or the blob store cannot take the job now (see Retry-After)"},
}
_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ACCEPTED_RESPONSES,
    415: {"description": "not a JPEG, PNG, WebP or GIF"},
}


# An upload up to this size is copied into the store on the event loop, only its flush in a
# thread: starlette's form parser keeps files up to 1 MiB in memory, and copying one takes
# well under a millisecond; a larger one (spooled to disk) goes wholly to a thread.
STAGE_ON_THE_LOOP_BYTES = 1024 * 1024


class JobAccepted(BaseModel):
    id: str
    status_url: str


def _answer(accepted: Accepted, response: Response, trace: TraceParent) -> JobAccepted:
    status_url = f"/jobs/{accepted.job_id}"
    response.headers["Location"] = status_url
    response.headers[tracecontext.HEADER] = trace.header()
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return JobAccepted(id=accepted.job_id, status_url=status_url)


def _keyed(caller: Caller, idempotency_key: str | None, what: Callable[[], str]) -> Keyed | None:
    """The key as the caller's own (another client's same key is another reservation, and
    can never answer or reveal its job id), with the request's fingerprint `what()`."""
    if idempotency_key is None:
        return None
    return Keyed(f"{caller.name or ''}/{idempotency_key}", what)


def _parts(request: Request) -> tuple[Gateway, Caller, TraceParent]:
    """The gateway, the caller and the trace, read from the request here rather than given as
    dependencies: FastAPI solves each dependency anew per request, and for these three that
    was about a seventh of a submission's CPU."""
    return gateway_of(request), caller_of(request), request_trace(request)


def _dump(then: FollowUp | None) -> dict[str, object]:
    return then.model_dump(mode="json") if then else {}


def _on_the_loop(gateway: Gateway, job: Job, idempotency_key: str | None) -> AsyncPublish | None:
    """The publisher's awaitable publish when `job` may be submitted on the event loop: no
    Idempotency-Key to reserve and no mail to count or attach, so check_job has nothing to
    look up. None: the submission goes to a thread."""
    publish: AsyncPublish | None = getattr(gateway.publisher, "publish_async", None)
    if idempotency_key is None and not any(mails_in(job)):
        return publish
    return None


def _json_endpoint(spec: JobTypeSpec[Any, Any]) -> Any:
    body_model = create_model(
        f"{spec.name.title()}Request",
        __base__=spec.request_model,
        __doc__=f"`POST /jobs/{spec.name}`: its params, and optionally a follow-up job.",
        then=(FollowUp | None, None),
    )

    def submit_in_thread(
        gateway: Gateway,
        caller: Caller,
        job: Job,
        body: BaseModel,
        then: FollowUp | None,
        trace: TraceParent,
        idempotency_key: str | None,
    ) -> Accepted:
        # The caller's checks (ownership 404, the key's limits), then where mail may go (403).
        check_job(job, caller, gateway.lookup, gateway.ledger)
        check_policy(spec, body, then, gateway.limits)
        what = partial(fingerprint, spec.name, job.params, _dump(then))
        keyed = _keyed(caller, idempotency_key, what)
        return gateway.submitter.submit(job, keyed, trace.parent_id)

    async def submit(
        request: Request,
        response: Response,
        body: body_model,  # type: ignore[valid-type]
        idempotency_key: IdempotencyKey = None,
    ) -> JobAccepted:
        gateway, caller, trace = _parts(request)
        then: FollowUp | None = body.then  # type: ignore[attr-defined]
        check_params(spec, body, gateway.limits)
        check_follow_up(then, gateway.limits)
        job = Job(
            type=spec.name,
            params=job_params(body),
            then=then,
            client=caller.name,
            trace_id=trace.trace_id,
        )
        if publish := _on_the_loop(gateway, job, idempotency_key):
            # Only pure checks, then the confirm, awaited on the event loop.
            check_policy(spec, body, then, gateway.limits)
            accepted = await gateway.submitter.submit_unkeyed(job, publish, trace.parent_id)
        else:  # the ledger or the audit to ask, or a publisher that only blocks: a thread
            accepted = await run_in_threadpool(
                submit_in_thread, gateway, caller, job, body, then, trace, idempotency_key
            )
        return _answer(accepted, response, trace)

    return submit


def _upload_endpoint(spec: JobTypeSpec[Any, Any]) -> Any:
    form_type = FORM_MODELS[spec.name]
    lists = list_fields(form_type)

    def stored_job(
        gateway: Gateway,
        caller: Caller,
        job_id: str,
        upload: UploadFile,
        params: BaseModel,
        follow_up: FollowUp | None,
        trace: TraceParent,
    ) -> tuple[Job, StoredUpload]:
        """In a thread (a durable write): the upload stored, then the job naming it; its
        input deleted should the job fail."""
        settings = gateway.settings
        try:
            stored = store_image(
                upload.file,
                gateway.blobs,
                job_id,
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
            )
        except (OSError, BlobError) as e:  # the store is full, read-only, or has a planted link
            gateway.submitter.discard_inputs(job_id)  # a flush that failed after the rename
            raise upload_not_stored(e) from e
        except Rejected:  # over the byte limit as it streamed: the folder made for it goes
            gateway.submitter.discard_inputs(job_id)
            raise
        return job_naming(gateway, caller, stored, job_id, params, follow_up, trace), stored

    async def staged_job(
        gateway: Gateway,
        caller: Caller,
        job_id: str,
        upload: UploadFile,
        params: BaseModel,
        follow_up: FollowUp | None,
        trace: TraceParent,
    ) -> Job:
        """`stored_job` for an upload the form parser kept in memory: checked, hashed and
        staged on the event loop, and only the flush to disk (or the PUT) in a thread. A
        thread doing the whole write took the GIL back after each of its dozen system calls,
        which cost more CPU than the write (docs/performance-history.md)."""
        settings = gateway.settings
        stored, data = read_image(
            upload.file,
            job_id,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
        staged = None
        try:
            staged = gateway.blobs.stage_bytes(stored.key, data)
            await gateway.commits.commit(staged)
        except (OSError, BlobError) as e:  # as stored_job: whatever is left of it goes
            gateway.submitter.discard_inputs(job_id)
            raise upload_not_stored(e) from e
        except BaseException:
            # Cancelled (the server's stop) before the flush had its thread, or after it:
            # the staged file and its descriptors, or the blob with no job, go.
            if staged is not None:
                staged.discard()
            gateway.submitter.discard_inputs(job_id)
            raise
        return job_naming(gateway, caller, stored, job_id, params, follow_up, trace)

    def job_naming(
        gateway: Gateway,
        caller: Caller,
        stored: StoredUpload,
        job_id: str,
        params: BaseModel,
        follow_up: FollowUp | None,
        trace: TraceParent,
    ) -> Job:
        """The job for the stored upload; its input deleted should this fail."""
        try:
            return Job(
                id=job_id,
                type=spec.name,
                params=job_params(params),
                inputs=[stored.key],
                then=follow_up,
                client=caller.name,
                trace_id=trace.trace_id,
            )
        except BaseException:
            gateway.submitter.discard_inputs(job_id)  # no orphan input, whatever went wrong
            raise

    def submit_in_thread(
        gateway: Gateway,
        caller: Caller,
        probe: Job,
        upload: UploadFile,
        params: BaseModel,
        trace: TraceParent,
        idempotency_key: str | None,
    ) -> Accepted:
        # The caller's checks (ownership 404, the key's limits), then where mail may go (403),
        # all before the upload is stored: a refusal leaves nothing behind.
        check_job(probe, caller, gateway.lookup, gateway.ledger)
        check_policy(spec, params, probe.then, gateway.limits)
        job, stored = stored_job(gateway, caller, probe.id, upload, params, probe.then, trace)

        def what() -> str:  # the upload hashed only now, for a key to reserve
            return fingerprint(spec.name, job.params, _dump(probe.then), stored.sha256)

        keyed = _keyed(caller, idempotency_key, what)
        return gateway.submitter.submit(job, keyed, trace.parent_id)

    async def submit(
        request: Request, response: Response, idempotency_key: IdempotencyKey = None
    ) -> JobAccepted:
        # The form is read here, not declared as a parameter (forms.py says why); the OpenAPI
        # document takes it from the route's `openapi_extra`.
        async with request_form(request, lists) as fields:
            form = read_form_model(form_type, lists, fields)
            return await submit_form(request, response, form, idempotency_key)

    async def submit_form(
        request: Request, response: Response, form: BaseModel, idempotency_key: str | None
    ) -> JobAccepted:
        gateway, caller, trace = _parts(request)
        upload: UploadFile = form.file  # type: ignore[attr-defined]
        then_text: str | None = form.then  # type: ignore[attr-defined]
        params = params_from_form(spec, form)
        check_params(spec, params, gateway.limits)
        follow_up = parse_follow_up(then_text)
        check_follow_up(follow_up, gateway.limits)
        probe = Job(id=new_id(), type=spec.name, then=follow_up, client=caller.name)
        if publish := _on_the_loop(gateway, probe, idempotency_key):
            # As a JSON job: only pure checks, then a thread for the durable write of the
            # upload (only its flush for one held in memory), the confirm awaited on the loop.
            check_policy(spec, params, follow_up, gateway.limits)
            if upload.size is not None and upload.size <= STAGE_ON_THE_LOOP_BYTES:
                job = await staged_job(gateway, caller, probe.id, upload, params, follow_up, trace)
            else:
                job, _ = await run_in_threadpool(
                    stored_job, gateway, caller, probe.id, upload, params, follow_up, trace
                )
            accepted = await gateway.submitter.submit_unkeyed(job, publish, trace.parent_id)
        else:  # the ledger or the audit to ask, or a publisher that only blocks: a thread
            accepted = await run_in_threadpool(
                submit_in_thread, gateway, caller, probe, upload, params, trace, idempotency_key
            )
        return _answer(accepted, response, trace)

    return submit


for _spec in JOB_TYPES:
    _endpoint = _upload_endpoint(_spec) if _spec.upload else _json_endpoint(_spec)
    _endpoint.__name__ = f"submit_{_spec.name}"
    _endpoint.__doc__ = _spec.summary
    router.add_api_route(
        f"/jobs/{_spec.name}",
        _endpoint,
        methods=["POST"],
        status_code=202,
        response_model=JobAccepted,
        responses=_UPLOAD_RESPONSES if _spec.upload else _ACCEPTED_RESPONSES,
        openapi_extra={"requestBody": request_body(FORM_MODELS[_spec.name])}
        if _spec.upload
        else None,
    )


def _post_only(path: str) -> Callable[[], None]:
    """Only POST at a submission path: 405 with `Allow`, where GET /jobs/{id} would take the
    path for an id and answer 422."""

    def not_allowed() -> None:
        raise Rejected(
            405, "method_not_allowed", f"{path} takes POST only", headers={"Allow": "POST"}
        )

    return not_allowed


for _name in JOB_TYPE_NAMES:
    router.add_api_route(
        f"/jobs/{_name}",
        _post_only(f"/jobs/{_name}"),
        methods=["GET", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )


@router.post(
    "/jobs/{job_type}",
    status_code=404,
    include_in_schema=False,
    responses={404: {"description": "no such job type"}},
)
def unknown_job_type(job_type: str) -> None:
    """Without it a POST to /jobs/<anything> is a bare 405 (GET /jobs/{id} owns the path)."""
    known = ", ".join(f"/jobs/{t}" for t in JOB_TYPE_NAMES)
    raise Rejected(404, "unknown_job_type", f"unknown job type: POST to one of {known}")
