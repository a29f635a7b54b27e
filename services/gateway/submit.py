"""Accepting a job: its inputs are already in the blob store; publish it, or leave nothing.

Order (docs/design.md, delivery guarantee 1): inputs stored → job encoded → Idempotency-Key
reserved → job published with confirm + mandatory → `job.submitted` event → 202. Any refusal
on the way deletes the job's stored inputs and releases the key, so nothing half-done stays
behind (a job that cannot even be encoded fails before its key is reserved); except when
the job was sent but never confirmed (PublishInDoubt): the broker may hold it, so its
inputs stay, the 503 says so, and the key's retry sends the same job again. Once the
broker has confirmed the job the answer is 202, even when recording it afterwards fails (a
full disk under STATE_DIR): that is logged, never a 500 that would make the client resend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from services.gateway.accepted_batch import AcceptedBatch
from services.gateway.idempotency import Keyed
from services.gateway.keychecks import mails_in
from services.gateway.publisher import JobPublisher, Outgoing
from services.gateway.rejections import Rejected
from shared.blobs import BlobStore
from shared.errors import BlobError, BrokerError, PublishInDoubt, PublishNacked, StateError
from shared.events import EventSource
from shared.ids import new_id
from shared.log import get_logger
from shared.messages import ErrorInfo, Event, Job, decode_job, encode
from shared.state import AcceptedJob, Claim, Reservation, SubmissionLedger
from shared.topology import Names
from shared.tracecontext import job_header

log = get_logger(__name__)
RETRY_AFTER_S = "5"
# Publisher.publish_async: sends a batch and waits for its job's confirm without a thread.
AsyncPublish = Callable[[Sequence[Outgoing]], Awaitable[None]]


@dataclass(frozen=True)
class Accepted:
    job_id: str
    replayed: bool = False


def job_message(names: Names, job: Job, span_id: str | None = None) -> Outgoing:
    # The trace in a header too, for tools that read headers only; the job's body has it.
    # Its parent: the request's span (`accept`, the one the answer names), when known.
    headers = job_header(job.trace_id, span_id) if job.trace_id else None
    return Outgoing(names.jobs_exchange, job.type, encode(job), job.id, job.type, headers)


def event_message(names: Names, event: Event) -> Outgoing:
    return Outgoing(names.events_exchange, "", encode(event), event.event_id, event.event)


class Submitter:
    def __init__(
        self,
        names: Names,
        publisher: JobPublisher,
        blobs: BlobStore,
        ledger: SubmissionLedger,
        source: EventSource,
        *,
        on_accepted: Callable[[Job], None] = lambda _job: None,
    ) -> None:
        self.names = names
        self.publisher = publisher
        self.blobs = blobs
        self.ledger = ledger
        self.source = source
        # Told the type of each job the broker confirmed (not replays): the metrics.
        self.on_accepted = on_accepted
        # submit_unkeyed's records
        self._batch = AcceptedBatch(ledger, off_loop=ledger.writes_wait_on_server)

    def submit(self, job: Job, keyed: Keyed | None, span_id: str | None = None) -> Accepted:
        """`keyed`: the request's Idempotency-Key, if it came with one. `span_id`: the
        request's span in the job's trace, the parent of the job's."""
        key = None if keyed is None else keyed.key
        try:
            outgoing = self._messages(job, span_id)
            reservation = None if keyed is None else self._reserve(keyed, job.id)
        except BaseException:
            self.discard_inputs(job.id)
            raise
        if key is not None and reservation is not None and reservation.claim is not Claim.NEW:
            self.discard_inputs(job.id)  # the earlier request's job is the one
            return self._earlier(reservation, key)
        return self._publish(job, key, outgoing)

    def _reserve(self, keyed: Keyed, job_id: str) -> Reservation:
        try:
            return self.ledger.reserve(keyed.key, keyed.fingerprint(), job_id)
        except StateError as e:  # its disk full, say: nothing sent yet, nothing kept
            log.error("idempotency_key_not_reserved", job_id=job_id, error=str(e))
            raise Rejected(
                503,
                "state_store_unavailable",
                f"the Idempotency-Key cannot be recorded ({e}); nothing was queued or"
                " kept, try again later",
                headers={"Retry-After": RETRY_AFTER_S},
            ) from None

    def _messages(self, job: Job, span_id: str | None = None) -> list[Outgoing]:
        """The job and its `job.submitted`, encoded before anything is reserved or sent: a
        job that cannot be encoded fails here, with nothing to undo but its inputs."""
        submitted = self.source.about("job.submitted", job)
        return [job_message(self.names, job, span_id), event_message(self.names, submitted)]

    def _publish(
        self,
        job: Job,
        key: str | None,
        outgoing: list[Outgoing] | None = None,
        *,
        was_in_doubt: bool = False,
    ) -> Accepted:
        try:
            self.publisher.publish(outgoing or self._messages(job))
        except BrokerError as e:
            raise self._not_queued(job, key, e, was_in_doubt) from None
        return self._queued(job, key, was_in_doubt)

    async def submit_unkeyed(
        self, job: Job, publish: AsyncPublish, span_id: str | None = None
    ) -> Accepted:
        """`submit` for a job without an Idempotency-Key, on the event loop: nothing to
        reserve, so the only wait is the broker's confirm, awaited instead of holding a
        thread (a thread-pool hop per request cost more CPU than the rest of the route)."""
        try:
            outgoing = self._messages(job, span_id)
        except BaseException:
            self.discard_inputs(job.id)
            raise
        try:
            await publish(outgoing)
        except BrokerError as e:
            raise self._not_queued(job, None, e) from None
        self.on_accepted(job)
        log.info("job_accepted", job_id=job.id, type=job.type, inputs=len(job.inputs))
        try:  # with the others confirmed in this turn of the loop
            await self._batch.record(self._accepted_row(job))
        except Exception as e:  # the job is queued either way: 202
            log.error("accepted_job_not_recorded", job_id=job.id, type=job.type, error=str(e))
        return Accepted(job.id)

    def _not_queued(
        self, job: Job, key: str | None, e: BrokerError, was_in_doubt: bool = False
    ) -> Rejected:
        """The answer to a job the broker did not confirm; unless it is in doubt, nothing of
        it is kept (its inputs, its key)."""
        log.warning("job_not_queued", job_id=job.id, type=job.type, error=str(e))
        if was_in_doubt or isinstance(e, PublishInDoubt):
            return self._in_doubt(job, key, e)
        self.discard_inputs(job.id)
        if key is not None:
            self._forget_key(key, job.id)
        # reject-publish: a nack is how a full queue (TASK_QUEUE_MAX_LENGTH) says no.
        what = (
            "the queue is full or the broker refused it"
            if isinstance(e, PublishNacked)
            else "no broker"
        )
        return Rejected(
            503,
            "broker_unavailable",
            f"the job could not be queued ({what}: {e}); nothing was kept, try again later",
            headers={"Retry-After": RETRY_AFTER_S},
        )

    def _queued(self, job: Job, key: str | None, was_in_doubt: bool = False) -> Accepted:
        # Confirmed: the job is queued and will run, so from here the answer is 202 whatever
        # fails (a 500 would make the client send it again: a second mail).
        self.on_accepted(job)
        log.info("job_accepted", job_id=job.id, type=job.type, inputs=len(job.inputs))
        try:
            row = self._accepted_row(job)
            self.ledger.accepted(row.id, row.type, row.submitted_at, key, row.client, row.mails)
        except Exception as e:  # anything at all: the job is queued either way
            log.error("accepted_job_not_recorded", job_id=job.id, type=job.type, error=str(e))
        return Accepted(job.id, replayed=was_in_doubt)

    @staticmethod
    def _accepted_row(job: Job) -> AcceptedJob:
        mails = sum(1 for _ in mails_in(job))  # for the key's hourly mail limit
        return AcceptedJob(job.id, job.type, job.submitted_at, job.client, mails)

    def _forget_key(self, key: str, job_id: str) -> None:
        try:
            self.ledger.release(key, job_id)
        except StateError as e:  # the key stays "in progress" until it expires
            log.error("idempotency_key_not_released", job_id=job_id, error=str(e))

    def _in_doubt(self, job: Job, key: str | None, error: BrokerError) -> Rejected:
        """Sent, never confirmed: the broker may hold the job, so its inputs stay, and a retry
        with the same key sends this very job again (workers run a job id once)."""
        if key is not None and self._keep_in_doubt(key, job):
            retry = "retry with the same Idempotency-Key and it runs at most once"
        elif key is not None:
            retry = f"check GET /jobs/{job.id} before submitting it again"
        else:
            retry = "submitting it again may run it twice (an Idempotency-Key prevents that)"
        return Rejected(
            503,
            "publish_in_doubt",
            f"RabbitMQ did not confirm job {job.id} ({error}); it may have been queued all the"
            f" same, and GET /jobs/{job.id} will show it if so; {retry}",
            headers={"Retry-After": RETRY_AFTER_S},
        )

    def _keep_in_doubt(self, key: str, job: Job) -> bool:
        try:
            self.ledger.in_doubt(key, job.id, encode(job).decode())
        except Exception as e:  # the 503 naming the job must go out whatever fails here
            log.error("job_in_doubt_not_recorded", job_id=job.id, error=str(e))
            return False
        return True

    def _earlier(self, reservation: Reservation, key: str) -> Accepted:
        """The key was used before: its job again, an error, or a second try at a job whose
        first publish is in doubt."""
        if reservation.claim is Claim.REPLAY:
            log.info("idempotent_replay", job_id=reservation.job_id)
            return Accepted(reservation.job_id, replayed=True)
        if reservation.claim is Claim.IN_DOUBT and reservation.job is not None:
            log.info("idempotent_retry_of_job_in_doubt", job_id=reservation.job_id)
            return self._publish(decode_job(reservation.job.encode()), key, was_in_doubt=True)
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
        """Best effort: an input left behind costs space, never a wrong answer."""
        try:
            self.blobs.delete_prefix(f"inputs/{job_id}")
        except (OSError, BlobError) as e:
            log.error("inputs_not_discarded", job_id=job_id, error=str(e))

    def publish_rejection(
        self, job_type: str, kind: str, message: str, trace_id: str | None = None
    ) -> None:
        """Tell the audit log about a refused submission (best effort, not waited for)."""
        log.info("job_rejected", type=job_type, kind=kind, reason=message)
        event = Event(
            event="job.rejected",
            job_id=new_id(),
            type=job_type,
            service=self.source.service,
            instance=self.source.instance,
            error=ErrorInfo(kind=kind, message=message),
            trace_id=trace_id,
        )
        self.publisher.send([event_message(self.names, event)])
