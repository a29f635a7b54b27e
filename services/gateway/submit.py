"""Accepting a job: its inputs are already in the blob store; publish it, or leave nothing.

Order (DESIGN.md, delivery guarantee 1): inputs stored → Idempotency-Key reserved → job
published with confirm + mandatory → `job.submitted` event → 202. Any refusal on the way
deletes the job's stored inputs and releases the key, so nothing half-done stays behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from services.gateway.idempotency import Claim, SubmissionLedger
from services.gateway.publisher import JobPublisher, Outgoing
from services.gateway.rejections import Rejected
from shared.blobs import FolderBlobStore
from shared.errors import BrokerError, PublishNacked
from shared.events import EventSource
from shared.log import get_logger
from shared.messages import ErrorInfo, Event, Job, encode, new_id
from shared.topology import Names

log = get_logger(__name__)
RETRY_AFTER_S = "5"


@dataclass(frozen=True)
class Accepted:
    job_id: str
    replayed: bool = False


def job_message(names: Names, job: Job) -> Outgoing:
    return Outgoing(names.jobs_exchange, job.type, encode(job), job.id, job.type)


def event_message(names: Names, event: Event) -> Outgoing:
    return Outgoing(names.events_exchange, "", encode(event), event.event_id, event.event)


class Submitter:
    def __init__(
        self,
        names: Names,
        publisher: JobPublisher,
        blobs: FolderBlobStore,
        ledger: SubmissionLedger,
        source: EventSource,
    ) -> None:
        self.names = names
        self.publisher = publisher
        self.blobs = blobs
        self.ledger = ledger
        self.source = source

    def submit(self, job: Job, fingerprint: str, key: str | None) -> Accepted:
        if key is not None:
            earlier = self._claim(job, fingerprint, key)
            if earlier is not None:
                return earlier
        submitted = self.source.about("job.submitted", job)
        try:
            self.publisher.publish(
                [job_message(self.names, job), event_message(self.names, submitted)]
            )
        except BrokerError as e:
            self.discard_inputs(job.id)
            if key is not None:
                self.ledger.release(key, job.id)
            log.warning("job_not_queued", job_id=job.id, type=job.type, error=str(e))
            # reject-publish: a nack is how a full queue (TASK_QUEUE_MAX_LENGTH) says no.
            what = (
                "the queue is full or the broker refused it"
                if isinstance(e, PublishNacked)
                else "no broker"
            )
            raise Rejected(
                503,
                "broker_unavailable",
                f"the job could not be queued ({what}: {e}); nothing was kept, try again later",
                headers={"Retry-After": RETRY_AFTER_S},
            ) from None
        self.ledger.accepted(job.id, job.type, job.submitted_at, key)
        log.info("job_accepted", job_id=job.id, type=job.type, inputs=len(job.inputs))
        return Accepted(job.id)

    def _claim(self, job: Job, fingerprint: str, key: str) -> Accepted | None:
        """None when the key is ours; the earlier job when this is a replay; else Rejected."""
        reservation = self.ledger.reserve(key, fingerprint, job.id)
        if reservation.claim is Claim.NEW:
            return None
        self.discard_inputs(job.id)
        if reservation.claim is Claim.REPLAY:
            log.info("idempotent_replay", job_id=reservation.job_id)
            return Accepted(reservation.job_id, replayed=True)
        if reservation.claim is Claim.CONFLICT:
            raise Rejected(
                409,
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request",
            )
        raise Rejected(
            409,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is being queued right now; retry shortly",
            headers={"Retry-After": "1"},
        )

    def discard_inputs(self, job_id: str) -> None:
        prefix = f"inputs/{job_id}"
        self.blobs.delete_prefix(prefix)
        with contextlib.suppress(OSError):
            self.blobs.path(prefix).rmdir()

    def rejected(self, job_type: str, kind: str, message: str) -> None:
        """Tell the audit log about a refused submission (best effort, not waited for)."""
        log.info("job_rejected", type=job_type, kind=kind, reason=message)
        event = Event(
            event="job.rejected",
            job_id=new_id(),
            type=job_type,
            service=self.source.service,
            instance=self.source.instance,
            error=ErrorInfo(kind=kind, message=message),
        )
        self.publisher.send([event_message(self.names, event)])
