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
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from types import FrameType

from shared.amqp import Channel, Connection, Delivery, compute_backoff, connect
from shared.blobs import BlobWriter, FolderBlobStore
from shared.bridge import IoBridge
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
from shared.messages import Event, Job, decode_job, encode
from shared.topology import RETRY_DELAY_HEADER, Names, declare_topology, retry_delay_ms

Handler = Callable[[Job, BlobWriter], list[str]]
"""A pure function: a job in (its inputs in the blob store), the keys of its outputs out."""

log = get_logger(__name__)
_PUMP_S = 0.2
EXIT_ABORTED = 130


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        service: str,
        job_type: str,
        handler: Handler,
        blobs: FolderBlobStore | None = None,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.job_type = job_type
        self.handler = handler
        self.blobs = blobs or FolderBlobStore(settings.blob_dir)
        self.source = EventSource(service, instance or instance_name())
        self.names = Names(settings.namespace)
        self._stopping = threading.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"{service}-job")
        self._in_flight: Future[None] | None = None

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
            connection = connect(self.settings, name, should_stop=self._stopping.is_set)
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
        self._executor.shutdown(wait=True)
        log.info("worker_stopped")
        return 0

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _serve(self, connection: Connection) -> None:
        session = _Session(self, connection)
        try:
            session.start()
            log.info("consuming", queue=self.names.task_queue(self.job_type))
            while not self._stopping.is_set():
                session.pump()
            session.drain()
        finally:
            session.bridge.close()

    # --- one job ------------------------------------------------------------------------

    def _accept(self, session: _Session, delivery: Delivery) -> None:
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
        if delivery.delivery_count >= self.settings.max_deliveries:
            # The job killed its worker again and again: stop the loop here.
            message = f"delivered {delivery.delivery_count + 1} times without finishing"
            log.error("delivery_limit_reached", job_id=job.id, error=message)
            session.publish_event(self.source.failure("job.failed", job, "delivery_limit", message))
            delivery.channel.reject(delivery)
            return
        self._in_flight = self._executor.submit(self._process, session, job, delivery)

    def _process(self, session: _Session, job: Job, delivery: Delivery) -> None:
        """On the job thread: run the handler, then settle through the I/O thread."""
        bind_job(self.service, job.id, job.type, job.attempt)
        started = time.monotonic()
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
            try:
                outcome = session.bridge.call(settle)
            except PublishNacked as e:
                # The follow-up's queue is full (x-max-length): its outputs are kept, so a
                # later attempt only publishes the follow-up again.
                refused = partial(
                    session.retry, job, delivery, "follow_up_refused", str(e), started
                )
                outcome = session.bridge.call(refused)
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


class _Session:
    """One connection's channels and consumer; every method runs on the I/O thread."""

    def __init__(self, worker: Worker, connection: Connection) -> None:
        self.worker = worker
        self.connection = connection
        self.bridge = IoBridge(connection)
        self.consumer: Channel | None = None
        self.publisher: Channel | None = None
        self.consumer_tag: str | None = None
        self.cancelled_by_broker = False

    def start(self) -> None:
        w = self.worker
        self.publisher = self.connection.channel(confirm=True)
        declare_topology(self.publisher, w.settings)
        self.consumer = self.connection.channel()
        self.consumer.set_prefetch(1)
        self.consumer_tag = self.consumer.consume(
            w.names.task_queue(w.job_type),
            lambda delivery: w._accept(self, delivery),
            on_cancel=self._on_cancel,
        )

    def _on_cancel(self) -> None:
        self.cancelled_by_broker = True

    def pump(self) -> None:
        self.connection.pump(_PUMP_S)
        if self.cancelled_by_broker:
            raise BrokerUnavailable("the broker cancelled the consumer (queue deleted?)")
        if self.bridge.failure is not None:
            raise BrokerUnavailable(str(self.bridge.failure)) from self.bridge.failure
        channels = (self.consumer, self.publisher)
        if not all(ch is not None and ch.is_open for ch in channels):
            raise BrokerUnavailable("a channel was closed by the broker")

    def drain(self) -> None:
        """Stop taking jobs, then keep pumping until the job in hand is settled."""
        if self.consumer and self.consumer_tag:
            self.consumer.cancel(self.consumer_tag)
        in_flight = self.worker._in_flight
        if in_flight is not None and not in_flight.done():
            log.info("finishing_job_in_hand")
        while in_flight is not None and not in_flight.done():
            self.connection.pump(_PUMP_S)

    # --- publishing and settling (I/O thread) ---------------------------------------------

    def publish_event(self, event: Event) -> None:
        assert self.publisher is not None
        self.publisher.publish(
            self.worker.names.events_exchange,
            "",
            encode(event),
            message_id=event.event_id,
            message_type=event.event,
        )

    def publish_job(self, job: Job, exchange: str, headers: dict[str, str] | None = None) -> None:
        assert self.publisher is not None
        self.publisher.publish(
            exchange,
            job.type,
            encode(job),
            message_id=job.id,
            message_type=job.type,
            headers=headers,
        )

    def succeed(self, job: Job, delivery: Delivery, outputs: list[str], started: float) -> str:
        w = self.worker
        follow = job.follow_up(outputs)
        if follow is not None:
            self.publish_job(follow, w.names.jobs_exchange)
            self.publish_event(w.source.about("job.submitted", follow))
        done = w.source.about("job.succeeded", job, duration_ms=_ms_since(started), outputs=outputs)
        self.publish_event(done)
        delivery.channel.ack(delivery)
        return "succeeded"

    def fail(self, job: Job, delivery: Delivery, kind: str, message: str, started: float) -> str:
        log.warning("job_failed", error_kind=kind, error=message)
        source = self.worker.source
        self.publish_event(
            source.failure("job.failed", job, kind, message, duration_ms=_ms_since(started))
        )
        delivery.channel.reject(delivery)
        return "failed"

    def retry(self, job: Job, delivery: Delivery, kind: str, message: str, started: float) -> str:
        """Republish to the next back-off queue and ack, or dead-letter when none is left."""
        w = self.worker
        delay = retry_delay_ms(w.settings, job.attempt)
        if delay is None:
            final = f"gave up after {job.attempt} attempts: {message}"
            return self.fail(job, delivery, kind, final, started)
        log.warning("job_retrying", error_kind=kind, error=message, retry_in_ms=delay)
        headers = {RETRY_DELAY_HEADER: str(delay)}
        self.publish_job(job.next_attempt(), w.names.retry_exchange, headers)
        self.publish_event(w.source.failure("job.retrying", job, kind, message))
        delivery.channel.ack(delivery)
        return "retrying"


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def run_worker(settings: Settings, *, service: str, job_type: str, handler: Handler) -> int:
    worker = Worker(settings, service=service, job_type=job_type, handler=handler)
    worker.install_signal_handlers()
    return worker.run()
