"""The AMQP side: consume `audit.events` and `audit.dead`, record in batches, then ack.

Both queues are consumed on one channel with a large prefetch. Each turn of the I/O loop
gathers what has arrived (up to `BATCH_MAX`), records it (log fsynced, read model updated),
publishes the batch's `job.dead` events on `events` (announce.py) and acks the last delivery
with `multiple=True`, which settles the whole batch at once. A crash before that ack means
the broker redelivers the batch; the recorder drops the events it already has. Runs on the
thread that owns the connection (pika is not thread-safe).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

from services.audit.announce import DeadAnnouncer
from services.audit.deadletters import dead_event, read_dead_letter
from services.audit.health import WriteHealth
from services.audit.metrics import AuditMetrics, LagProbe
from services.audit.recorder import Entry, Recorder
from shared.amqp import Connection, Delivery, broker_user, compute_backoff, connect
from shared.config import Settings
from shared.errors import BrokerUnavailable, DecodeError, JobsuiteError, StateError
from shared.log import get_logger
from shared.messages import decode_event
from shared.topology import Names, ensure_topology

log = get_logger(__name__)

SERVICE = "audit"
BATCH_MAX = 500
_PUMP_S = 0.2
PRUNE_EVERY_S = 3600.0


def _collect(pending: list[tuple[str, Delivery]], source: str) -> Callable[[Delivery], None]:
    return lambda delivery: pending.append((source, delivery))


def _note(cancelled: list[str], queue: str) -> Callable[[], None]:
    return lambda: cancelled.append(queue)


class RecordingFailed(JobsuiteError):
    """The disk or the read model refused a batch; nothing of it was acked."""


class AuditConsumer:
    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        *,
        instance: str,
        stopping: threading.Event,
        health: WriteHealth | None = None,
        metrics: AuditMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.health = health or WriteHealth([])
        self.metrics = metrics or AuditMetrics()
        self.recorder = recorder
        self.instance = instance
        self.names = Names(settings.namespace)
        self.stopping = stopping
        self.consuming = threading.Event()
        self._next_prune = 0.0
        # A job.dead is the audit's own word (from a dead letter): its publisher is our user.
        self.own_user = broker_user(settings.amqp_url)

    def run(self) -> None:
        """Consume until `stopping` is set, reconnecting with back-off when the broker goes."""
        failures = 0
        while not self.stopping.is_set():
            self._maintain()
            connection = connect(
                self.settings,
                f"{self.names.audit_events_queue}:{self.instance}",
                should_stop=self.stopping.is_set,
            )
            if connection is None:
                break
            try:
                self._serve(connection)
                failures = 0
            except (BrokerUnavailable, RecordingFailed) as e:
                failures += 1
                delay = compute_backoff(failures, base=0.25, cap=15.0)
                log.warning("consumer_interrupted", error=str(e), retry_in_s=round(delay, 2))
                self.stopping.wait(delay)
            finally:
                self.consuming.clear()
                connection.close()
        log.info("consumer_stopped")

    def _serve(self, connection: Connection) -> None:
        ensure_topology(connection, self.settings)
        channel = connection.channel()
        channel.set_prefetch(BATCH_MAX)
        announcer = DeadAnnouncer(connection, self.names.events_exchange)
        pending: list[tuple[str, Delivery]] = []
        cancelled: list[str] = []
        for source, queue in (
            ("events", self.names.audit_events_queue),
            ("dead", self.names.audit_dead_queue),
        ):
            channel.consume(queue, _collect(pending, source), on_cancel=_note(cancelled, queue))
        self.consuming.set()
        log.info("consuming", queues=[self.names.audit_events_queue, self.names.audit_dead_queue])
        lag = LagProbe(connection, self.names.audit_events_queue, self.metrics)
        while not self.stopping.is_set():
            lag.probe_when_due()
            connection.pump(_PUMP_S)
            while pending and len(pending) < BATCH_MAX:
                before = len(pending)
                connection.pump(0)
                if len(pending) == before:
                    break
            if pending:
                self._record_batch(pending, announcer)
            if cancelled:
                raise BrokerUnavailable(f"the broker cancelled the consumer of {cancelled[0]}")
            if not channel.is_open:
                raise BrokerUnavailable("the channel was closed by the broker")
            self._maintain()

    def _record_batch(self, pending: list[tuple[str, Delivery]], announcer: DeadAnnouncer) -> None:
        """Record, announce and ack what is pending. Announcing pumps the connection, which
        may deliver more: those stay pending for the next batch, neither recorded nor acked."""
        batch = pending[:]
        self._flush(batch, announcer)
        del pending[: len(batch)]

    def _flush(self, batch: list[tuple[str, Delivery]], announcer: DeadAnnouncer) -> None:
        entries = [entry for s, d in batch if (entry := self._entry(s, d)) is not None]
        try:
            # The log, the read model and the checkpoint: all written, or no ack.
            records = self.recorder.record(entries)
        except (OSError, sqlite3.Error, StateError) as e:
            log.exception("recording_failed")
            reason = f"recording failed: {type(e).__name__}: {e}"
            self.health.failed(reason)
            raise RecordingFailed(reason) from e
        self.health.succeeded()
        for record in records:  # new ones only: a redelivered copy is not recorded twice
            self.metrics.recorded(str(record.event.get("event")))
        announcer.announce([entry[1] for entry in entries if entry[0] == "dead"])
        last = batch[-1][1]
        last.channel.ack(last, multiple=True)

    def _entry(self, source: str, delivery: Delivery) -> Entry | None:
        if source == "dead":
            dead = read_dead_letter(delivery.body, delivery.headers, delivery.message_id, None)
            return source, dead_event(dead, delivery.body, SERVICE, self.instance), self.own_user
        try:
            return source, decode_event(delivery.body), delivery.user_id
        except DecodeError as e:
            # Not an event: nothing to record. Logged in full so it is not lost silently.
            log.error(
                "undecodable_event_dropped",
                message_id=delivery.message_id,
                error=str(e),
                body_preview=delivery.body[:200].decode("utf-8", "replace"),
            )
            return None

    def _maintain(self) -> None:
        """Retention, at start and then hourly, on the writer's own thread."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            self.recorder.prune(self.settings.audit_retention_days)
        except (OSError, sqlite3.Error, StateError):
            log.exception("prune_failed")
