"""`DELETE /jobs/{id}`: the owner (or an admin) deletes a finished job's blobs.

What goes: its inputs (`inputs/<id>/…`) and outputs (`outputs/<id>/…`, the manifest too).
What stays: the audit's record of the job, which gains a `job.deleted` event (who: the job's
`client`, the gateway instance; when: `at`) and shows `deleted_at`. A follow-up is a job of
its own, deleted on its own.

Order: the job is looked up as `GET /jobs/{id}` does (another client's job is the same 404 as
a missing one) → refused with 409 while it may still run (submitted, started, retrying: its
worker would meet its inputs gone) → `job.deleted` published with a confirm (no broker: 503,
nothing deleted, so the audit never misses a deletion) → blobs deleted → 204. Deleting again
answers 204 again (the audit still knows the job) and records another `job.deleted`.
"""

from __future__ import annotations

from services.gateway.context import Gateway
from services.gateway.rejections import Rejected
from services.gateway.submit import RETRY_AFTER_S, event_message
from shared.auth import Caller
from shared.errors import BlobError, BrokerError
from shared.log import get_logger
from shared.messages import Event, JobRecord

log = get_logger(__name__)
RUNNING = {"submitted", "started", "retrying"}  # a worker may still read its inputs


def delete_job(gateway: Gateway, caller: Caller, job_id: str) -> None:
    """Delete the job's blobs, or Rejected: 404 (unknown or not the caller's), 409 (it may
    still run), 503 (audit, broker or blob store unavailable)."""
    record = gateway.lookup.record(job_id, caller.may_see)
    if record.status in RUNNING:
        raise Rejected(
            409,
            "job_not_finished",
            f"job {job_id} has not finished (status: {record.status}); its blobs can be"
            " deleted once it has",
        )
    _announce(gateway, record)
    try:
        gateway.blobs.delete_prefix(f"outputs/{job_id}")
        gateway.blobs.delete_prefix(f"inputs/{job_id}")
    except (OSError, BlobError) as e:
        log.error("job_blobs_not_deleted", job_id=job_id, error=str(e))
        raise Rejected(
            503,
            "blob_store_unavailable",
            f"the blob store failed ({e}); some blobs of job {job_id} may remain, delete again",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from None
    log.info("job_blobs_deleted", job_id=job_id, type=record.type, by=caller.name)


def _announce(gateway: Gateway, record: JobRecord) -> None:
    source = gateway.submitter.source
    event = Event(
        event="job.deleted",
        job_id=record.id,
        type=record.type,
        service=source.service,
        instance=source.instance,
        parent_id=record.parent_id,
        client=record.client,
    )
    try:
        gateway.publisher.publish([event_message(gateway.submitter.names, event)])
    except BrokerError as e:
        log.warning("job_deleted_not_announced", job_id=record.id, error=str(e))
        raise Rejected(
            503,
            "broker_unavailable",
            f"the deletion could not be recorded (no broker: {e}); nothing was deleted, try"
            " again later",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from None
