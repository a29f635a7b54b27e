"""One job type's consumer on one connection. Every method runs on the connection's I/O
thread; the consumer owns the job in hand.

It takes deliveries (prefetch 1, manual acks), checks them (`checks.py`), hands each job to
the job thread, and settles on the I/O thread what the job thread cannot: a job over its
time limit is settled as a passing fault, its thread interrupted, and no other job is taken
until that thread has ended (or the process ends, if it will not).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from shared.amqp import Channel, Delivery
from shared.config import Settings
from shared.errors import BrokerUnavailable, PublishNacked
from shared.exit_codes import EXIT_JOB_STUCK
from shared.limits import limits_of
from shared.log import get_logger, job_context
from shared.worker.checks import Refusal, check_delivery, traced
from shared.worker.claims import DeliveryBudget
from shared.worker.job_thread import JobThread, RunningJob
from shared.worker.perform import (
    Handler,
    JobCourse,
    outputs_recorded,
    settle_in_span,
    settle_or_reconnect,
)

log = get_logger("shared.worker")
# How long the I/O thread waits for a job it handed over to come back to be settled, before it
# goes back to its loop (bridge.HandOver): a tiny job is settled without waking the loop, and
# a long one's `job.started` leaves at most this late. The loop is not pumped meanwhile, so
# another job type on the same connection may wait this long for its delivery.
SETTLE_WAIT_S = 0.05


@dataclass(frozen=True)
class Binding:
    """A job type this worker serves, the handler that does it, and its job thread (which
    outlives connections: one job of the type at a time, across reconnects too)."""

    job_type: str
    handler: Handler
    job_thread: JobThread


class Consumer:
    def __init__(
        self,
        binding: Binding,
        *,
        settings: Settings,
        channel: Channel,
        course: JobCourse,
        service: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.binding = binding
        self.settings = settings
        self.channel = channel
        self.course = course
        self.service = service
        self.clock = clock
        self.limits = limits_of(settings)  # what the gateway checks, checked again
        self.queue = course.settler.names.task_queue(binding.job_type)
        self.budget = DeliveryBudget.of(settings)
        self.consumer_tag: str | None = None
        self.cancelled_by_broker = False
        self.paused = False
        self.stopped = False
        self.consumed = False  # whether this connection has consumed at all

    # --- subscribing ----------------------------------------------------------------------

    def subscribe(self) -> None:
        self.channel.set_prefetch(1)
        if self.binding.job_thread.interrupted is not None:
            # The last connection's job was interrupted and its thread has not ended: no
            # job until it has (watch_time_limit resumes).
            self.paused = True
            log.warning("waiting_for_interrupted_job_thread", queue=self.queue)
            return
        if self.busy:
            # The last connection's job still runs (its delivery went back with it): no job
            # until it ends, so the job in hand is the one running, and watch_time_limit
            # holds it to its limit; a job taken now would only wait behind it.
            self.paused = True
            log.warning("waiting_for_the_last_connections_job", queue=self.queue)
            return
        self._consume()
        log.info("consuming", queue=self.queue)

    def _consume(self) -> None:
        self.consumer_tag = self.channel.consume(
            self.queue, self.on_delivery, on_cancel=self._on_cancel
        )
        self.consumed = True

    def _on_cancel(self) -> None:
        self.cancelled_by_broker = True

    def stop_taking(self, for_good: bool = False) -> None:
        """Take no more jobs (basic.cancel); the job in hand goes on. `for_good` (the
        worker is stopping): not even once a time limit's pause is over."""
        self.stopped = self.stopped or for_good
        if self.consumer_tag is not None and self.channel.is_open:
            self.channel.cancel(self.consumer_tag)
        self.consumer_tag = None

    def check_alive(self) -> None:
        """Raise BrokerUnavailable when the broker cancelled the consumer or closed a channel."""
        if self.cancelled_by_broker:
            raise BrokerUnavailable("the broker cancelled the consumer (queue deleted?)")
        if not (self.channel.is_open and self.course.settler.channel.is_open):
            raise BrokerUnavailable("a channel was closed by the broker")

    @property
    def busy(self) -> bool:
        running = self.binding.job_thread.in_hand
        return running is not None and not running.done.is_set()

    # --- one delivery ---------------------------------------------------------------------

    def on_delivery(self, delivery: Delivery) -> None:
        """Check the delivery, then hand the job to the job thread."""
        verdict = check_delivery(
            delivery,
            self.binding.job_type,
            self.budget,
            lambda job: outputs_recorded(job, self.course.blobs),
            self.limits,
        )
        if isinstance(verdict, Refusal):
            self._refuse(delivery, verdict)
            return
        job = traced(verdict, delivery)
        self.course.spans.waited(job, delivery.headers)
        context = job_context(self.service, job.id, job.type, job.attempt, job.trace_id)
        running = RunningJob(job, delivery, self.settings.job_time_limit, context)
        # `job.started` goes out from here, not from the job thread: no hand-over to this
        # thread and back for it. The job thread is free (prefetch 1, and no job is taken
        # while an interrupted one, or the last connection's, lives); the settling waits for
        # its confirm with the rest. It is held to go out with the job's end, one write and
        # one confirm for both, when the job ends within SETTLE_WAIT_S; else it leaves as
        # this thread goes back to its loop.
        settler = self.course.settler
        started = settler.source.about("job.started", job)
        context.run(partial(settler.publish_event, started, with_next=True))
        self.binding.job_thread.start(running, self.course.perform)
        running.hand_over.take(SETTLE_WAIT_S)

    def _refuse(self, delivery: Delivery, refusal: Refusal) -> None:
        log.error(refusal.log_event, **refusal.log_fields)
        if refusal.job is not None and refusal.failure_kind is not None:
            try:
                self.course.settler.refuse(
                    traced(refusal.job, delivery), delivery, refusal.failure_kind, refusal.failure
                )
                return
            except PublishNacked as e:
                # Dead-lettered all the same: audit.dead records the dead letter.
                log.error("job_failed_event_refused", job_id=refusal.job.id, error=str(e))
        delivery.channel.reject(delivery)
        # Not a job of this type at all (or its job.failed refused): a dead letter.
        self.course.settler.count(self.binding.job_type, "dead")

    # --- the time limit -------------------------------------------------------------------

    def watch_time_limit(self) -> None:
        """Interrupt the thread of a job over its limit, settle the job, and take no other
        job until that thread has ended (or end the process if it will not)."""
        job_thread = self.binding.job_thread
        now = self.clock()
        if (interrupted := job_thread.interrupted) is not None:
            if interrupted.stuck(now):
                exit_stuck(interrupted)
            return
        running = job_thread.in_hand
        if running is None or running.done.is_set():
            if self.paused and not self.stopped:
                self._resume()
            return
        if running.over_limit(now):
            running.timed_out = True
            limit = self.settings.job_time_limit
            log.error("job_time_limit_exceeded", job_id=running.job.id, limit_s=limit)
            # Interrupted before it is settled: settling waits for the broker's confirms,
            # which a blocked connection (a memory or disk alarm) holds back while the alarm
            # lasts, and the job must not run on meanwhile (a mailer's claim on its mail
            # lasts only as long as the limit allows it to be sending). Its own outcome,
            # should it still come, is discarded (`timed_out`).
            job_thread.interrupt(running)
            self._pause()  # basic.cancel
            # A job left running by a lost connection is settled by nobody: the broker has
            # taken its delivery back already.
            if running.delivery.channel is self.channel:
                self._retry_over_limit(running, limit)
        elif running.stuck(now):  # timed out before its thread took it, behind a stuck job
            exit_stuck(running)

    def _retry_over_limit(self, running: RunningJob, limit: float) -> None:
        why = f"still running after {limit} s (JOB_TIME_LIMIT)"
        retry = partial(
            self.course.settler.retry,
            running.job,
            running.delivery,
            "time_limit",
            why,
            running.started,
        )
        # A retry the broker refuses drops the connection (BrokerUnavailable), as for a job
        # that finished: held unsettled it would stop this consumer for good.
        settle = partial(settle_or_reconnect, retry)
        headers = running.delivery.headers
        in_span = partial(settle_in_span, self.course.spans, running.job, headers, settle)
        running.context.copy().run(in_span)

    def _pause(self) -> None:
        self.stop_taking()
        self.paused = True

    def _resume(self) -> None:
        self.paused = False
        first = not self.consumed
        self._consume()
        if first:  # this connection's first consume (its subscribe waited for a thread)
            log.info("consuming", queue=self.queue)
        else:
            log.info("consuming_again")


def exit_stuck(running: RunningJob) -> None:
    """A job thread that ignores its interruption ends with its process; the supervisor
    (compose, shared.respawn) starts the worker again."""
    log.critical("job_thread_stuck_exiting", job_id=running.job.id)
    os._exit(EXIT_JOB_STUCK)
