"""The worker runner: takes jobs of one type off its task queue and settles each one.

Guarantees (DESIGN.md "Delivery guarantees" 2-10):
- prefetch 1, manual acks; the handler runs in a job thread while the connection's own thread
  keeps pumping (heartbeats, deliveries); the job thread reaches the connection only through
  `IoBridge`, so acks go back via `add_callback_threadsafe`;
- a job is acked only after its outputs, its follow-up job and its events are confirmed;
- PermanentJobError -> job.failed, reject -> dead letters; TransientJobError (or any
  unexpected exception) -> the next back-off queue with attempt+1, then ack; no back-off step
  left -> job.failed, dead letters; undecodable messages -> dead letters, never a requeue loop;
- a job redelivered `max_deliveries` times (its worker died each time) -> dead letters;
- outputs are keyed by job id and finished by a manifest: a redelivered job whose manifest
  exists is not run again;
- a job over JOB_TIME_LIMIT is settled as a passing fault and its thread interrupted
  (`shared/timelimit.py`);
- SIGTERM/SIGINT: stop consuming, finish and ack the job in hand, exit 0; a second signal exits
  at once (the broker redelivers the job);
- connection lost: reconnect with back-off and jitter, declare the topology again, carry on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from types import FrameType

from shared.amqp import Connection, Delivery, compute_backoff, connect
from shared.blobs import BlobStore, open_blob_store
from shared.config import Settings
from shared.errors import (
    BlobError,
    BrokerUnavailable,
    DecodeError,
    PermanentJobError,
    PublishNacked,
    TransientJobError,
)
from shared.events import EventSource, instance_name
from shared.log import bind_job, get_logger, unbind_job
from shared.messages import Job, decode_job
from shared.timelimit import (
    EXIT_JOB_STUCK,
    JobTimeLimitExceeded,
    RunningJob,
    interrupt,
    start_job_thread,
)
from shared.topology import Names
from shared.worker_session import WorkerSession

Handler = Callable[[Job, BlobStore], list[str]]
"""A pure function: a job in (its inputs in the blob store), the keys of its outputs out."""

log = get_logger(__name__)
EXIT_ABORTED = 130


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        service: str,
        job_type: str,
        handler: Handler,
        blobs: BlobStore | None = None,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.job_type = job_type
        self.handler = handler
        self.blobs = blobs or open_blob_store(settings)
        self.source = EventSource(service, instance or instance_name())
        self.names = Names(settings.namespace)
        self._stopping = threading.Event()
        self._running: RunningJob | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping.is_set():
            log.warning("second_signal_exiting_now", signal=signal.Signals(signum).name)
            os._exit(EXIT_ABORTED)
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        """Serve until asked to stop; returns the process exit code."""
        failures = 0
        name = f"{self.names.task_queue(self.job_type)}:{self.source.instance}"
        while not self._stopping.is_set():
            connection = connect(
                self.settings, name, should_stop=self._stopping.is_set, when_blocked="wait"
            )
            if connection is None:
                break
            try:
                self._serve(connection)
                failures = 0
            except BrokerUnavailable as e:
                failures += 1
                delay = compute_backoff(failures, base=0.25, cap=15.0)
                log.warning("connection_lost", error=str(e), reconnect_in_s=round(delay, 2))
                self._sleep(delay)
            finally:
                connection.close()
        if self._running is not None:
            self._running.future.result()
        log.info("worker_stopped")
        return 0

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _serve(self, connection: Connection) -> None:
        session = WorkerSession(self, connection)
        try:
            session.start()
            log.info("consuming", queue=self.names.task_queue(self.job_type))
            while not self._stopping.is_set():
                session.pump()
                self._watch_time_limit(session)
            session.drain()
        finally:
            session.bridge.close()

    # --- one job ------------------------------------------------------------------------

    def _accept(self, session: WorkerSession, delivery: Delivery) -> None:
        """On the I/O thread: decode, guard, hand the job to the job thread."""
        try:
            job = decode_job(delivery.body)
        except DecodeError as e:
            log.error(
                "undecodable_message_dead_lettered",
                message_id=delivery.message_id,
                error=str(e),
                body_preview=delivery.body[:120].decode("utf-8", "replace"),
            )
            delivery.channel.reject(delivery)
            return
        if job.type != self.job_type:
            log.error("wrong_job_type_dead_lettered", job_id=job.id, type=job.type)
            delivery.channel.reject(delivery)
            return
        if delivery.delivery_count >= self.settings.max_deliveries and not self._done(job):
            # The job killed its worker again and again: stop the loop here. (A job whose
            # outputs are recorded only lost its settling: it goes on, to succeed at once.)
            message = f"delivered {delivery.delivery_count + 1} times without finishing"
            log.error("delivery_limit_reached", job_id=job.id, error=message)
            session.publish_event(self.source.failure("job.failed", job, "delivery_limit", message))
            delivery.channel.reject(delivery)
            return
        previous, running = self._running, RunningJob(job, delivery, self.settings.job_time_limit_s)
        self._running = running
        start_job_thread(
            running, partial(self._process, session, running, previous), f"{self.service}-job"
        )

    def _watch_time_limit(self, session: WorkerSession) -> None:
        """On the I/O thread: settle a job over its limit, interrupt its thread, and take
        no other job until that thread has ended (or end the process if it will not)."""
        running = self._running
        if running is None:
            return
        if running.future.done():
            if running.timed_out and session.paused:
                session.resume()
            return
        now = time.monotonic()
        if running.over_limit(now):
            running.timed_out = True
            limit = self.settings.job_time_limit_s
            log.error("job_time_limit_exceeded", job_id=running.job.id, limit_s=limit)
            session.pause()
            why = f"still running after {limit} s (JOB_TIME_LIMIT)"
            session.retry(running.job, running.delivery, "time_limit", why, running.started)
            if running.thread_id is not None:
                interrupt(running.thread_id)
        elif running.stuck(now):
            log.critical("job_thread_stuck_exiting", job_id=running.job.id)
            os._exit(EXIT_JOB_STUCK)

    def _settle_unless_timed_out(self, running: RunningJob, settle: Callable[[], str]) -> str:
        """On the I/O thread: the time limit may have settled this job already."""
        if running.timed_out:
            log.warning("late_outcome_discarded", job_id=running.job.id)
            return "timed_out"
        return settle()

    def _process(
        self, session: WorkerSession, running: RunningJob, previous: RunningJob | None
    ) -> None:
        """On the job thread: run the handler, then settle through the I/O thread."""
        if previous is not None:
            # One job at a time per process, even when a lost connection left the thread
            # of the last one running.
            previous.future.result()
        running.started = time.monotonic()
        job, delivery = running.job, running.delivery
        bind_job(self.service, job.id, job.type, job.attempt)
        started = running.started
        outcome = "abandoned"
        try:
            started_event = self.source.about("job.started", job)
            session.bridge.call(partial(session.publish_event, started_event))
            settle: Callable[[], str]
            try:
                outputs = self._outputs_of(job)
                settle = partial(session.succeed, job, delivery, outputs, started)
            except (PermanentJobError, DecodeError) as e:
                settle = partial(session.fail, job, delivery, _kind(e), str(e), started)
            except TransientJobError as e:
                settle = partial(session.retry, job, delivery, e.kind, str(e), started)
            except Exception as e:
                log.exception("handler_crashed")
                why = f"{type(e).__name__}: {e}"
                settle = partial(session.retry, job, delivery, "crash", why, started)
            settle_on_io = partial(self._settle_unless_timed_out, running)
            try:
                outcome = session.bridge.call(partial(settle_on_io, settle))
            except PublishNacked as e:
                # The broker refused a message (a follow-up's queue is full): the outputs are
                # kept, so a later attempt only publishes again.
                refused = partial(session.retry, job, delivery, "publish_refused", str(e), started)
                outcome = session.bridge.call(partial(settle_on_io, refused))
        except JobTimeLimitExceeded:
            outcome = "timed_out"  # the I/O thread has settled the job already
            log.warning("job_interrupted_by_time_limit")
        except BrokerUnavailable as e:
            # Not acked: the broker redelivers the job, and its manifest stops a second run.
            log.warning("job_abandoned_connection_lost", error=str(e))
        finally:
            log.info(
                "job_finished",
                outcome=outcome,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
            unbind_job(self.service)

    def _done(self, job: Job) -> bool:
        try:
            return self.blobs.read_manifest(job.id) is not None
        except (BlobError, OSError, ValueError):
            return False

    def _outputs_of(self, job: Job) -> list[str]:
        try:
            done = self.blobs.read_manifest(job.id)
        except (BlobError, OSError, ValueError) as e:
            raise TransientJobError(f"cannot read the output manifest: {e}") from e
        if done is not None:
            log.info("job_already_done_skipping_handler", outputs=len(done))
            return done
        outputs = self.handler(job, self.blobs)
        self.blobs.write_manifest(job.id, outputs)
        return outputs


def _kind(error: Exception) -> str:
    return error.kind if isinstance(error, PermanentJobError) else "invalid_params"


def run_worker(settings: Settings, *, service: str, job_type: str, handler: Handler) -> int:
    worker = Worker(settings, service=service, job_type=job_type, handler=handler)
    worker.install_signal_handlers()
    return worker.run()
