"""One connection of a worker: its channels and consumer, and settling jobs on it.

Every method runs on the connection's I/O thread (job threads come in through `bridge`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.amqp import Channel, Connection, Delivery
from shared.amqp_confirms import PipelinedChannel
from shared.bridge import IoBridge
from shared.errors import BrokerUnavailable
from shared.log import get_logger
from shared.messages import Event, Job, encode
from shared.topology import RETRY_DELAY_HEADER, declare_topology, retry_delay_ms

if TYPE_CHECKING:
    from shared.worker import Worker

log = get_logger("shared.worker")
# How long one pump of the connection waits for I/O before the loop looks around again.
PUMP_S = 0.2


class WorkerSession:
    """One connection's channels and consumer; every method runs on the I/O thread."""

    def __init__(self, worker: Worker, connection: Connection) -> None:
        self.worker = worker
        self.connection = connection
        self.bridge = IoBridge(connection)
        self.consumer: Channel | None = None
        self.publisher: PipelinedChannel | None = None
        self.consumer_tag: str | None = None
        self.cancelled_by_broker = False
        self.paused = False

    def start(self) -> None:
        self.publisher = self.connection.pipelined_channel()
        declare_topology(self.publisher, self.worker.settings)
        self.consumer = self.connection.channel()
        self.consumer.set_prefetch(1)
        self._subscribe()

    def _subscribe(self) -> None:
        w = self.worker
        assert self.consumer is not None
        self.consumer_tag = self.consumer.consume(
            w.names.task_queue(w.job_type),
            lambda delivery: w._accept(self, delivery),
            on_cancel=self._on_cancel,
        )

    def pause(self) -> None:
        """Take no more jobs for now (a timed-out job thread has not ended yet)."""
        if self.consumer and self.consumer_tag:
            self.consumer.cancel(self.consumer_tag)
        self.consumer_tag = None
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._subscribe()
        log.info("consuming_again")

    def _on_cancel(self) -> None:
        self.cancelled_by_broker = True

    def pump(self) -> None:
        self.connection.pump(PUMP_S)
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
        running = self.worker._running
        if running is not None and not running.future.done():
            log.info("finishing_job_in_hand")
        while running is not None and not running.future.done():
            self.connection.pump(PUMP_S)
            self.worker._watch_time_limit(self)

    # --- publishing and settling (I/O thread) ---------------------------------------------

    # Messages go out at once; a settle method waits for all confirms so far (one round trip
    # for the lot, job.started included) before it acks or rejects.

    def publish_event(self, event: Event) -> None:
        assert self.publisher is not None
        self.publisher.publish_nowait(
            self.worker.names.events_exchange,
            "",
            encode(event),
            message_id=event.event_id,
            message_type=event.event,
        )

    def publish_job(self, job: Job, exchange: str, headers: dict[str, str] | None = None) -> None:
        assert self.publisher is not None
        self.publisher.publish_nowait(
            exchange,
            job.type,
            encode(job),
            message_id=job.id,
            message_type=job.type,
            headers=headers,
        )

    def confirmed(self) -> None:
        assert self.publisher is not None
        self.publisher.wait_for_confirms()

    def succeed(self, job: Job, delivery: Delivery, outputs: list[str], started: float) -> str:
        w = self.worker
        follow = job.follow_up(outputs)
        if follow is not None:
            self.publish_job(follow, w.names.jobs_exchange)
            self.publish_event(w.source.about("job.submitted", follow))
            # A refused follow-up (its queue full) must not be followed by job.succeeded.
            self.confirmed()
        done = w.source.about("job.succeeded", job, duration_ms=_ms_since(started), outputs=outputs)
        self.publish_event(done)
        self.confirmed()
        delivery.channel.ack(delivery)
        return "succeeded"

    def fail(self, job: Job, delivery: Delivery, kind: str, message: str, started: float) -> str:
        log.warning("job_failed", error_kind=kind, error=message)
        source = self.worker.source
        self.publish_event(
            source.failure("job.failed", job, kind, message, duration_ms=_ms_since(started))
        )
        self.confirmed()
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
        self.confirmed()
        delivery.channel.ack(delivery)
        return "retrying"


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
