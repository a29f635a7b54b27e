"""The worker process: its signals, and the run/reconnect loop around one connection.

Guarantees (docs/design.md, "Delivery guarantees"):
- SIGTERM/SIGINT: stop consuming, finish and settle the job in hand, exit 0; a second signal
  exits at once (130) and the broker redelivers the job;
- connection lost: reconnect with back-off and jitter, declare the topology again, go on; a
  job still running from the lost connection is never settled on the new one (the broker
  redelivers it, and its manifest stops a second run);
- one job at a time per job type and slot, even across reconnects (each type's job thread
  outlives connections).

WORKER_CONCURRENCY=N runs N slots in the process: each slot is this loop on a thread of its
own, with its own connection, consumer channels (prefetch 1), confirm channels and job
threads, so N jobs run at once with every guarantee kept per job, and a slot's waits for
confirms never hold up another's. One connection per thread, as pika wants (and as
Dramatiq's RabbitMQ broker does); SIGTERM stops every slot, each finishing its job in hand.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from prometheus_client import CollectorRegistry

from shared.amqp import Channel, Connection, compute_backoff, connect, sleep_unless
from shared.blobs import BlobStore, open_blob_store
from shared.config import Settings, config_error
from shared.errors import BrokerUnavailable, ConfigError
from shared.events import EventSource, instance_name
from shared.exit_codes import EXIT_ABORTED
from shared.log import get_logger
from shared.metrics import MetricsServer, WorkerMetrics, serve_metrics
from shared.spans import open_spans
from shared.topology import Names, ensure_topology
from shared.worker.bridge import IoBridge
from shared.worker.consumer import Binding, Consumer, exit_stuck
from shared.worker.job_thread import JobThread, RunningJob
from shared.worker.perform import Handler, JobCourse
from shared.worker.settle import Settler

log = get_logger("shared.worker")
# How long one pump of the connection waits for I/O before the loop looks around again.
PUMP_S = 0.2


class Worker:
    """Serves the job types in `handlers` (job type -> handler) until asked to stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        service: str,
        handlers: Mapping[str, Handler],
        blobs: BlobStore | None = None,
        instance: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a worker serves at least one job type")
        self.settings = settings
        self.service = service
        # A registry of this worker's own (never the process-wide default): served on
        # METRICS_PORT when that is set.
        self.metrics = metrics or WorkerMetrics(CollectorRegistry(), service, handlers)
        self.metrics_server: MetricsServer | None = None
        self.blobs = blobs or open_blob_store(settings)
        self.source = EventSource(service, instance or instance_name())
        self.spans = open_spans(settings, service)  # NO_SPANS unless OTEL_EXPORTER_OTLP_ENDPOINT
        self.names = Names(settings.namespace)
        self.slots = [
            _Slot(
                index,
                [
                    Binding(job_type, handler, JobThread(_thread_name(service, job_type, index)))
                    for job_type, handler in handlers.items()
                ],
            )
            for index in range(settings.worker_concurrency)
        ]
        self._stopping = threading.Event()
        self._signalled = False  # a SIGTERM or SIGINT came: a second one exits at once

    # --- signals --------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._signalled:  # not a stop of our own (a failed slot's): that is no signal
            log.warning("second_signal_exiting_now", signal=signal.Signals(signum).name)
            os._exit(EXIT_ABORTED)
        self._signalled = True
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until asked to stop; returns the process exit code. ConfigError when
        METRICS_PORT is set and cannot be listened on."""
        self._serve_metrics()
        try:
            if len(self.slots) == 1:
                self._run_slot(self.slots[0])
            else:
                self._run_slots()
        finally:
            if self.metrics_server is not None:
                self.metrics_server.close()
                self.metrics_server = None
            self.spans.close()  # the spans of the last jobs, flushed before the exit
        log.info("worker_stopped")
        return 0

    def _serve_metrics(self) -> None:
        port, host = self.settings.metrics_port, self.settings.metrics_host
        if port is None:
            return
        self.metrics_server = serve_metrics(self.metrics.registry, host, port)
        log.info("metrics_listening", host=host, port=self.metrics_server.port)

    def _run_slots(self) -> None:
        """Every slot on a thread of its own. A slot that fails stops the others (each
        finishes its job in hand), and the failure ends the process as it would with one."""
        failures: list[BaseException] = []

        def run(slot: _Slot) -> None:
            try:
                self._run_slot(slot)
            except BaseException as e:
                failures.append(e)
                self._stopping.set()

        threads = [
            threading.Thread(target=run, args=(slot,), name=f"slot-{slot.index}", daemon=True)
            for slot in self.slots
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # a timed join: the main thread must take signals
                thread.join(PUMP_S)
        if failures:
            raise failures[0]

    def _run_slot(self, slot: _Slot) -> None:
        """One slot's run/reconnect loop, until asked to stop; then its jobs in hand end.
        While it has no connection, nobody else watches its jobs' time limits: the
        reconnect's waits do (a job in hand may run on through a broker outage)."""

        def should_stop() -> bool:
            _watch_limits(slot.bindings)
            return self._stopping.is_set()

        failures = 0
        while not self._stopping.is_set():
            connection = connect(
                self.settings,
                self._connection_name(slot),
                should_stop=should_stop,
                when_blocked="wait",
                eager_send=True,  # its events and acks go out one at a time
            )
            if connection is None:
                break
            try:
                self._serve(connection, slot.bindings)
                failures = 0
            except BrokerUnavailable as e:
                failures += 1
                delay = compute_backoff(failures, base=0.25, cap=15.0)
                log.warning("connection_lost", error=str(e), reconnect_in_s=round(delay, 2))
                sleep_unless(should_stop, delay, self._stopping.wait)
            finally:
                connection.close()
        for binding in slot.bindings:
            running = binding.job_thread.in_hand
            if running is not None:
                _wait_out(binding.job_thread, running)
            binding.job_thread.close()

    def _connection_name(self, slot: _Slot) -> str:
        """Starts with the task queue's name (so with the namespace): tests and operators
        find a worker's connections by it."""
        types = "+".join(b.job_type for b in slot.bindings)
        name = f"{self.names.task_queue(types)}:{self.source.instance}"
        return name if len(self.slots) == 1 else f"{name}#{slot.index}"

    def _serve(self, connection: Connection, bindings: list[Binding]) -> None:
        bridge = IoBridge(connection)
        try:
            # The topology once per connection; then one confirm channel per job type (a
            # nack must reach its own job's settling).
            ensure_topology(connection, self.settings)
            confirms = self.metrics.confirms
            publishers = [connection.channel(confirm=True, confirms=confirms) for _ in bindings]
            consumers = [
                self._open(connection, bridge, binding, publisher)
                for binding, publisher in zip(bindings, publishers, strict=True)
            ]
            while not self._stopping.is_set():
                connection.pump(PUMP_S)
                self._look_around(bridge, consumers)
            self._drain(connection, bridge, consumers)
        finally:
            bridge.close()

    def _open(
        self, connection: Connection, bridge: IoBridge, binding: Binding, publisher: Channel
    ) -> Consumer:
        settler = Settler(publisher, self.names, self.source, self.settings, self.metrics)
        consumer = Consumer(
            binding,
            settings=self.settings,
            channel=connection.channel(),
            course=JobCourse(binding.handler, self.blobs, bridge, settler, self.spans),
            service=self.service,
        )
        consumer.subscribe()
        return consumer

    @staticmethod
    def _look_around(bridge: IoBridge, consumers: list[Consumer]) -> None:
        if bridge.failure is not None:
            raise BrokerUnavailable(str(bridge.failure)) from bridge.failure
        for consumer in consumers:
            consumer.check_alive()
            consumer.watch_time_limit()

    def _drain(self, connection: Connection, bridge: IoBridge, consumers: list[Consumer]) -> None:
        """Stop taking jobs, then keep pumping until the jobs in hand are settled."""
        for consumer in consumers:
            consumer.stop_taking(for_good=True)
        if any(consumer.busy for consumer in consumers):
            log.info("finishing_job_in_hand")
        while any(consumer.busy for consumer in consumers):
            connection.pump(PUMP_S)
            self._look_around(bridge, consumers)


@dataclass(frozen=True)
class _Slot:
    """One of WORKER_CONCURRENCY: its job threads (one per job type) outlive its
    connections."""

    index: int
    bindings: list[Binding]


def _wait_out(job_thread: JobThread, running: RunningJob) -> None:
    """Until the job in hand has ended, its time limit still watched: its connection may be
    gone (a stop during a reconnect), so nobody settles it, but a job past its limit is
    interrupted and one that ignores that ends the process, as while serving."""
    while not running.done.wait(PUMP_S):
        _hold_to_limit(job_thread, running, time.monotonic())


def _watch_limits(bindings: list[Binding]) -> None:
    """The time limits of the jobs in hand of a slot with no connection."""
    now = time.monotonic()
    for binding in bindings:
        running = binding.job_thread.in_hand
        if running is not None and not running.done.is_set():
            _hold_to_limit(binding.job_thread, running, now)


def _hold_to_limit(job_thread: JobThread, running: RunningJob, now: float) -> None:
    """A job with no connection to settle it on, past its limit: interrupted (its delivery
    went back with the connection), and its process ended should it not let go."""
    if running.over_limit(now):
        running.timed_out = True
        log.error("job_time_limit_exceeded", job_id=running.job.id, limit_s=running.limit_s)
        job_thread.interrupt(running)
    elif running.stuck(now):
        exit_stuck(running)


def _thread_name(service: str, job_type: str, slot: int) -> str:
    return f"{service}-{job_type}" if slot == 0 else f"{service}-{job_type}-{slot}"


def run_worker(settings: Settings, *, service: str, handlers: Mapping[str, Handler]) -> int:
    """Run a worker process for `handlers` (job type -> handler) until SIGTERM/SIGINT."""
    try:
        worker = Worker(settings, service=service, handlers=handlers)
    except ConfigError as e:  # the blob store's bucket missing or refused
        return config_error(e)
    worker.install_signal_handlers()
    try:
        return worker.run()
    except ConfigError as e:  # METRICS_PORT taken: one line, as any bad setting at start
        return config_error(e)
