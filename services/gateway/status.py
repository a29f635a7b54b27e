"""Where a job stands: the audit service's read API first, the gateway's own records after.

Audit (`AUDIT_URL/jobs/{id}`) knows every event of a job. When it has not seen the job yet,
the blob store's manifest (finished) or the gateway's ledger (accepted, so "submitted") still
answer. When audit is unreachable only a finished job can be told (from its manifest):
anything else is a 503 saying so, never a guess.

Every answer carries the job's owner (`client`): the routes show a job only to its client
and to admins. The gateway calls the audit with AUDIT_API_KEY (an admin key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from services.gateway.rejections import Rejected
from shared.blobs import BlobStore
from shared.blobs.keys import Manifest
from shared.errors import AuditUnavailable, BlobError, BlobLinkError
from shared.log import get_logger
from shared.messages import JobRecord
from shared.state import SubmissionLedger

log = get_logger(__name__)
AUDIT_TIMEOUT_S = 3.0
RETRY_AFTER_S = "5"


def link_refused(job_id: str, error: BlobLinkError) -> Rejected:
    """A 404 for a job whose manifest or output in the blob store is a symbolic link."""
    log.warning("blob_link_not_served", job_id=job_id, error=str(error))
    return Rejected(404, "output_missing", f"job {job_id}: {error}; it is not served")


class AuditClient:
    def __init__(
        self, base_url: str, *, api_key: str = "", timeout: float = AUDIT_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def job(self, job_id: str) -> JobRecord | None:
        """The audit record of a job, None when audit does not know it."""
        try:
            response = self._http.get(f"/jobs/{job_id}")
        except httpx.HTTPError as e:
            raise AuditUnavailable(f"{type(e).__name__} at {self.base_url}") from e
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise AuditUnavailable(
                f"it refused the gateway's AUDIT_API_KEY ({response.status_code}): set it to"
                " an admin key"
            )
        if response.status_code != 200:
            raise AuditUnavailable(f"it answered {response.status_code}")
        try:
            return JobRecord.model_validate_json(response.content)
        except ValidationError as e:
            raise AuditUnavailable("it answered something that is not a job record") from e


Visible = Callable[[str | None], bool]
"""Whether the caller may see a job of that owner (`Caller.may_see`)."""


def _anyone(_owner: str | None) -> bool:
    return True


def _if_visible(record: JobRecord | None, visible: Visible) -> JobRecord | None:
    return record if record is not None and visible(record.client) else None


@dataclass(frozen=True)
class JobLookup:
    audit: AuditClient
    blobs: BlobStore
    ledger: SubmissionLedger

    def record(self, job_id: str, visible: Visible = _anyone) -> JobRecord:
        """The job's record, or Rejected: 404 unknown, 503 audit unreachable and unfinished.
        A record whose owner is not `visible` counts as not found, wherever it comes from, so
        the answer is exactly that of an id that does not exist (404, or the same 503)."""
        try:
            record = _if_visible(self.audit.job(job_id), visible)
        except AuditUnavailable as e:
            record = _if_visible(self._from_manifest(job_id), visible)
            if record is None:
                raise Rejected(
                    503,
                    "audit_unavailable",
                    f"the audit service is unreachable ({e}): the status of job {job_id} is"
                    " unknown (it has not finished successfully)",
                    headers={"Retry-After": RETRY_AFTER_S},
                ) from None
            return record
        if record is not None:
            return record
        record = _if_visible(self._from_manifest(job_id), visible) or _if_visible(
            self._from_ledger(job_id), visible
        )
        if record is None:
            raise Rejected(404, "unknown_job", f"no job {job_id}")  # as job_routes.unknown_job
        return record

    def outputs(self, job_id: str) -> Manifest | None:
        """The finished job's manifest (outputs and owner), or None."""
        try:
            return self.blobs.read_manifest(job_id)
        except BlobLinkError as e:  # planted: never served, and never a 500
            raise link_refused(job_id, e) from None
        except (BlobError, OSError, ValueError, KeyError):
            return None

    def owner(self, job_id: str, visible: Visible = _anyone) -> str | None:
        """The client of a job `visible` lets the caller see: from its manifest, the
        gateway's ledger, then the audit; Rejected as `record` (404, 503) otherwise."""
        manifest = self.outputs(job_id)
        if manifest is not None and visible(manifest.client):
            return manifest.client
        accepted = self.ledger.find(job_id)
        if accepted is not None and visible(accepted.client):
            return accepted.client
        return self.record(job_id, visible).client

    def _from_manifest(self, job_id: str) -> JobRecord | None:
        manifest = self.outputs(job_id)
        if manifest is None:
            return None
        accepted = self.ledger.find(job_id)
        return JobRecord(
            id=job_id,
            type=accepted.type if accepted else "unknown",
            status="succeeded",
            client=manifest.client,
            submitted_at=accepted.submitted_at if accepted else None,
            outputs=manifest.outputs,
        )

    def _from_ledger(self, job_id: str) -> JobRecord | None:
        accepted = self.ledger.find(job_id)
        if accepted is None:
            return None
        return JobRecord(
            id=job_id,
            type=accepted.type,
            status="submitted",
            client=accepted.client,
            submitted_at=accepted.submitted_at,
        )
