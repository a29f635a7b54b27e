"""Settling a job: its events and follow-up confirmed by the broker first, then the ack or
the reject (delivery guarantees 3, 5 and 6). Runs on the I/O thread.

Messages go out at once; each way of settling waits for every confirm so far (one round trip
for the lot, `job.started` included) before it acks or rejects, so a job is never acked
while one of its messages might still be lost. When the broker refuses only events (an
event queue electing a leader), they are sent once more and waited for, and the job goes on
as it was: a refused event is no refused outcome, and the job's own messages must not go
twice. A refused job message (a follow-up, a retry's copy) is the caller's to handle.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from shared.amqp import Delivery
from shared.config import Settings
from shared.errors import BrokerError, BrokerUnavailable, PublishNacked
from shared.events import EventSource
from shared.log import get_logger
from shared.messages import Event, Job, encode
from shared.metrics import WorkerMetrics
from shared.spans import current_span_id
from shared.topology import (
    DEFERRALS_HEADER,
    DISK_FULL_RETRIES_HEADER,
    RETRY_DELAY_HEADER,
    Names,
    retry_delay_ms,
)
from shared.tracecontext import job_header
from shared.worker.job_thread import longest_run_s

log = get_logger("shared.worker")


class ConfirmChannel(Protocol):
    """What settling needs of a channel opened with confirms (shared.amqp.Channel)."""

    @property
    def is_open(self) -> bool: ...

    def publish_nowait(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: dict[str, Any] | None = None,
    ) -> None: ...

    def wait_for_confirms(self) -> None: ...

    def hold_output(self) -> None: ...


class Settler:
    """Publishes a job's events and follow-ups on one confirm channel and settles it."""

    def __init__(
        self,
        channel: ConfirmChannel,
        names: Names,
        source: EventSource,
        settings: Settings,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.channel = channel
        self.names = names
        self.source = source
        self.settings = settings  # the back-off steps (RETRY_DELAYS_MS)
        self.metrics = metrics  # counts each job settled, once acked or rejected
        # The events sent since the last wait for confirms, by id: sent again if refused.
        self._unconfirmed_events: dict[str, Event] = {}

    def count(self, job_type: str, outcome: str, trace_id: str | None = None) -> None:
        """`jobsuite_jobs_total{type,outcome}` one up (shared.metrics.OUTCOMES), with the
        job's trace as its exemplar."""
        if self.metrics is not None:
            self.metrics.settled(job_type, outcome, trace_id)

    def publish_event(self, event: Event, *, with_next: bool = False) -> None:
        """Send an event now (`with_next`: with what is sent next, at the latest when the I/O
        thread next waits on the broker); the next settle waits for its confirm."""
        if with_next:
            self.channel.hold_output()
        self.channel.publish_nowait(
            self.names.events_exchange,
            "",
            encode(event),
            message_id=event.event_id,
            message_type=event.event,
        )
        self._unconfirmed_events[event.event_id] = event

    def _confirmed(self, *, refused_twice: type[BrokerError] = BrokerUnavailable) -> None:
        """Every message so far confirmed. Refused events alone are sent once more and
        waited for; refused again, `refused_twice` (BrokerUnavailable: the connection drops
        and the broker takes the job back). A refused job message: PublishNacked."""
        events, self._unconfirmed_events = self._unconfirmed_events, {}
        try:
            self.channel.wait_for_confirms()
        except PublishNacked as e:
            again = [events[i] for i in e.refused if i in events]
            if not e.refused or len(again) < len(e.refused):
                raise  # a job message too, or one the channel cannot name
            log.warning("events_refused_sending_again", error=str(e))
            for event in again:
                self.publish_event(event)
            self._unconfirmed_events.clear()
            try:
                self.channel.wait_for_confirms()
            except PublishNacked as twice:
                raise refused_twice(
                    f"the broker refused the job's events twice ({twice}); reconnecting:"
                    " the job goes back to its queue"
                ) from twice

    def _publish_job(self, job: Job, exchange: str, headers: dict[str, Any] | None = None) -> None:
        body = encode(job)
        if job.trace_id is not None:  # for tools that read headers only; the body has it too
            headers = {**(headers or {}), **job_header(job.trace_id, current_span_id())}
        self.channel.publish_nowait(
            exchange, job.type, body, message_id=job.id, message_type=job.type, headers=headers
        )

    def succeed(self, job: Job, delivery: Delivery, outputs: list[str], started: float) -> str:
        """The follow-up (if any) and `job.succeeded` confirmed, then the ack."""
        follow = job.follow_up(outputs)
        if follow is not None:
            self._publish_job(follow, self.names.jobs_exchange)
            self.publish_event(self.source.about("job.submitted", follow))
            # A refused follow-up (its queue full) must not be followed by job.succeeded.
            self._confirmed()
        duration = _ms_since(started)
        self.publish_event(
            self.source.about("job.succeeded", job, duration_ms=duration, outputs=outputs)
        )
        self._confirmed()
        delivery.channel.ack(delivery)
        self.count(job.type, "succeeded", job.trace_id)
        return "succeeded"

    def fail(
        self,
        job: Job,
        delivery: Delivery,
        kind: str,
        message: str,
        started: float,
        *,
        outcome: str = "failed",
    ) -> str:
        """`job.failed` confirmed, then the reject: the queue dead-letters the job. Counted
        as `outcome`: `failed`, or `dead` when a passing fault ran out of back-off steps."""
        log.warning("job_failed", error_kind=kind, error=message)
        failed = self.source.failure(
            "job.failed", job, kind, message, duration_ms=_ms_since(started)
        )
        return self._reject_after(failed, delivery, outcome)

    def refuse(self, job: Job, delivery: Delivery, kind: str, message: str) -> str:
        """A job refused before it ran (it crashed its workers too often, or it is over a
        limit): `job.failed` confirmed, then the reject."""
        outcome = "dead" if kind == "delivery_limit" else "failed"
        failed = self.source.failure("job.failed", job, kind, message)
        # Refused twice, PublishNacked: the consumer rejects it all the same (audit.dead
        # records the dead letter), rather than dropping the connection over a job that
        # never ran.
        return self._reject_after(failed, delivery, outcome, refused_twice=PublishNacked)

    def _reject_after(
        self,
        failed: Event,
        delivery: Delivery,
        outcome: str,
        refused_twice: type[BrokerError] = BrokerUnavailable,
    ) -> str:
        self.publish_event(failed)
        self._confirmed(refused_twice=refused_twice)
        delivery.channel.reject(delivery)
        self.count(failed.type, outcome, failed.trace_id)
        return "failed"

    def retry(self, job: Job, delivery: Delivery, kind: str, message: str, started: float) -> str:
        """Republish to the next back-off queue and ack, or fail when no step is left."""
        delay = retry_delay_ms(self.settings, job.attempt)
        if delay is None:
            final = f"gave up after {job.attempt} attempts: {message}"
            return self.fail(job, delivery, kind, final, started, outcome="dead")
        log.warning("job_retrying", error_kind=kind, error=message, retry_in_ms=delay)
        carried = _disk_full_waits(delivery)
        return self._retry_after(job, job.next_attempt(), delivery, kind, message, delay, carried)

    def wait_for_room(self, job: Job, delivery: Delivery, message: str, started: float) -> str:
        """The disk is full: the machine's fault, not the job's. Retry after the longest
        back-off step without counting an attempt, up to DISK_FULL_RETRIES times (counted in
        a header that dead-lettering keeps), so a full disk does not kill every job in a few
        minutes; past that, retry as for any passing fault."""
        waited = _disk_full_retries(delivery)
        if waited >= self.settings.disk_full_retries:
            return self.retry(job, delivery, "disk_full", message, started)
        delay = max(self.settings.retry_delays_ms)
        log.warning("job_waiting_for_disk_space", error=message, retry_in_ms=delay, waited=waited)
        headers = {DISK_FULL_RETRIES_HEADER: waited + 1}
        return self._retry_after(job, job, delivery, "disk_full", message, delay, headers)

    def defer(self, job: Job, delivery: Delivery, kind: str, message: str, started: float) -> str:
        """Another worker holds the job's one-time part (JobDeferred): the same attempt again
        after a back-off step, the shortest for the first deferral and a longer one for each
        after it (the longest from then on). What holds a job runs out within the longest a
        job can run, so deferrals past twice that many seconds of waiting are a loop (a job
        that kills each worker holding it, say): they retry as a passing fault, counted."""
        deferred = _header_count(delivery, DEFERRALS_HEADER)
        steps = sorted(self.settings.retry_delays_ms)
        waited_ms = _steps_waited_ms(steps, deferred)
        if waited_ms > 2000 * longest_run_s(self.settings.job_time_limit):
            why = f"{message}; deferred {deferred} times ({waited_ms // 1000} s), still held"
            return self.retry(job, delivery, kind, why, started)
        delay = steps[min(deferred, len(steps) - 1)]
        log.warning("job_deferred", error_kind=kind, error=message, retry_in_ms=delay)
        headers = {**_disk_full_waits(delivery), DEFERRALS_HEADER: deferred + 1}
        return self._retry_after(
            job, job, delivery, kind, message, delay, headers, counted="deferred"
        )

    def _retry_after(
        self,
        job: Job,
        again: Job,
        delivery: Delivery,
        kind: str,
        message: str,
        delay: int,
        headers: dict[str, Any],
        *,
        counted: str = "retried",
    ) -> str:
        """`job.retrying` about `job` confirmed, then `again` (the job, or its next attempt)
        to the back-off queue of `delay` confirmed, then the ack. The copy goes last, alone:
        once it is in the back-off queue nothing is sent again. Sent together with the
        event, a refused event (or the `job.started` still unconfirmed before it) after a
        confirmed copy made the fallback's retry (perform.py) put a second copy there, and
        both ran. Counted as `counted` (`deferred`: waiting on another worker, no fault)."""
        self.publish_event(self.source.failure("job.retrying", job, kind, message))
        self._confirmed()
        self._publish_job(
            again, self.names.retry_exchange, {**headers, RETRY_DELAY_HEADER: str(delay)}
        )
        self._confirmed()
        delivery.channel.ack(delivery)
        self.count(job.type, counted, job.trace_id)
        return "retrying"


def _disk_full_retries(delivery: Delivery) -> int:
    """How often the job waited for disk space before; a count that is not a sane integer
    (forged, or from elsewhere) counts as the whole allowance spent."""
    return _header_count(delivery, DISK_FULL_RETRIES_HEADER)


def _disk_full_waits(delivery: Delivery) -> dict[str, Any]:
    """The count of waits for disk space, to go along with a retry, so they stay bounded over
    the job's life; nothing when the job never waited."""
    if DISK_FULL_RETRIES_HEADER not in delivery.headers:
        return {}
    return {DISK_FULL_RETRIES_HEADER: _disk_full_retries(delivery)}


def _steps_waited_ms(steps: list[int], taken: int) -> int:
    """The back-off waited over the first `taken` deferrals (`steps` sorted, the last one
    repeated once they run out)."""
    return sum(steps[:taken]) + max(0, taken - len(steps)) * steps[-1]


def _header_count(delivery: Delivery, header: str) -> int:
    """A count the job carries in `header` (0 when absent); one that is not a sane integer
    (forged, or from elsewhere) counts as the most there can be."""
    count = delivery.headers.get(header, 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return 1 << 30
    return count


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
