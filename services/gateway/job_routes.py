"""`GET /jobs/{id}` (where it stands), `GET /jobs/{id}/result` (what it made) and
`DELETE /jobs/{id}` (its blobs gone, its record kept: deletion.py).

A client sees its own jobs only: another client's job, or one without a client for a client
key, answers exactly as an id that does not exist (`JobLookup.record` with the caller's
`may_see`), so ids cannot be probed.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel

from services.gateway.context import CallerDep, Gateway, GatewayDep
from services.gateway.deletion import delete_job
from services.gateway.downloads import blob_download, content_disposition
from services.gateway.rejections import Rejected
from services.gateway.status import link_refused
from shared.auth import Caller
from shared.errors import BlobError, BlobLinkError
from shared.ids import UUID_PATTERN
from shared.messages import JobRecord

router = APIRouter(tags=["jobs"])
JobIdPath = Annotated[str, Path(pattern=UUID_PATTERN, description="the id the submission gave")]
RangeHeader = Annotated[
    str | None,
    Header(alias="range", description="one byte range, e.g. bytes=1000- to resume a download"),
]
FAILED = {"failed", "rejected", "dead"}  # no output will ever come


class Output(BaseModel):
    name: str
    url: str
    size: int
    content_type: str


class Outputs(BaseModel):
    id: str
    outputs: list[Output]


@router.get(
    "/jobs/{job_id}",
    responses={404: {"description": "unknown job"}, 503: {"description": "audit unreachable"}},
)
def job_status(gateway: GatewayDep, caller: CallerDep, job_id: JobIdPath) -> JobRecord:
    """Status, attempts, timestamps, error and outputs (from the audit service)."""
    return gateway.lookup.record(job_id, caller.may_see)


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "its inputs and outputs are deleted (again: 204 again)"},
        404: {"description": "unknown job"},
        409: {"description": "the job has not finished: submitted, started or retrying"},
    },
)
def job_delete(gateway: GatewayDep, caller: CallerDep, job_id: JobIdPath) -> Response:
    """Delete a finished job's inputs and outputs; the audit keeps its record (`deleted_at`).

    Its result is then 410. A follow-up is a job of its own, deleted on its own."""
    delete_job(gateway, caller, job_id)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/result",
    response_model=Outputs,
    responses={
        200: {"description": "the output file itself when there is one, else the list"},
        404: {"description": "unknown job"},
        409: {"description": "the job has not finished successfully"},
        410: {"description": "its outputs were deleted (DELETE /jobs/{id}, BLOB_RETENTION_DAYS)"},
    },
)
def job_result(
    gateway: GatewayDep, caller: CallerDep, job_id: JobIdPath, range_header: RangeHeader = None
) -> Response | Outputs:
    """The job's output file, or a list of links when it made several."""
    keys = _finished_outputs(gateway, caller, job_id)
    if len(keys) == 1:
        return _file(gateway, job_id, keys[0], range_header)
    outputs = [
        Output(
            name=_name(job_id, key),
            url=f"/jobs/{job_id}/result/{_name(job_id, key)}",
            size=_size(gateway, job_id, key),
            content_type=_content_type(key),
        )
        for key in keys
    ]
    return Outputs(id=job_id, outputs=outputs)


def _size(gateway: Gateway, job_id: str, key: str) -> int:
    try:
        return gateway.blobs.size(key)
    except BlobLinkError as e:
        raise link_refused(job_id, e) from None
    except BlobError:
        raise _gone(key) from None


@router.get(
    "/jobs/{job_id}/result/{name}",
    response_class=StreamingResponse,
    responses={
        404: {"description": "no such output"},
        410: {"description": "its outputs were deleted (DELETE /jobs/{id}, BLOB_RETENTION_DAYS)"},
    },
)
def job_result_file(
    gateway: GatewayDep,
    caller: CallerDep,
    job_id: JobIdPath,
    name: str,
    range_header: RangeHeader = None,
) -> Response:
    """One output file of a finished job, by the name the result list gives."""
    for key in _finished_outputs(gateway, caller, job_id):
        if _name(job_id, key) == name:
            return _file(gateway, job_id, key, range_header)
    raise Rejected(404, "unknown_output", f"job {job_id} has no output named {name!r}")


def _finished_outputs(gateway: Gateway, caller: Caller, job_id: str) -> list[str]:
    manifest = gateway.lookup.outputs(job_id)  # the owner is in it: no need to ask the audit
    if manifest is not None and caller.may_see(manifest.client):
        return manifest.outputs
    # 404 unknown or not the caller's, 503 audit unreachable: the same for both
    record = gateway.lookup.record(job_id, caller.may_see)
    if record.deleted_at is not None or record.status == "succeeded":
        raise _deleted(record)
    if record.status in FAILED:
        reason = f": {record.error.message}" if record.error else ""
        raise Rejected(409, "job_failed", f"job {job_id} {record.status}{reason}")
    raise Rejected(
        409, "not_finished", f"job {job_id} has not finished yet (status: {record.status})"
    )


def _deleted(record: JobRecord) -> Rejected:
    """Finished, and its manifest gone: deleted by its owner, or by the janitor."""
    if record.deleted_at is not None:
        why = f"were deleted at {record.deleted_at.isoformat()} (DELETE /jobs/{record.id})"
    else:
        why = "are gone from the blob store: deleted, or past BLOB_RETENTION_DAYS"
    return Rejected(410, "outputs_deleted", f"the outputs of job {record.id} {why}")


def _name(job_id: str, key: str) -> str:
    return key.removeprefix(f"outputs/{job_id}/").replace("/", "_")


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _file(gateway: Gateway, job_id: str, key: str, range_header: str | None) -> Response:
    try:
        if gateway.settings.result_redirect:
            url = gateway.blobs.download_url(
                key,
                disposition=content_disposition(PurePosixPath(key).name),
                media_type=_content_type(key),
            )
            if url is not None:  # the store serves it (and its ranges) itself
                return RedirectResponse(url, status_code=307)
        return blob_download(gateway.blobs, key, _content_type(key), range_header)
    except BlobLinkError as e:
        raise link_refused(job_id, e) from None
    except BlobError:
        raise _gone(key) from None


def _gone(key: str) -> Rejected:
    return Rejected(404, "output_missing", f"output {key} is listed but gone from the store")
