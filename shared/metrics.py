"""Prometheus metrics (the official `prometheus_client`): the workers' job metrics, the
publisher-confirm latency, and serving a registry on a port of its own.

Every service instance counts into a `CollectorRegistry` of its own, passed down to what
counts, never the process-wide default registry: the tests run several services in one
process, and each one's `/metrics` must show only its own counts. Labels are job types,
outcomes, event names, route templates, methods and statuses: a bounded set, never an id,
a client name or a key (docs/operations.md#metrics).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.exposition import choose_encoder

from shared.errors import ConfigError

# How a worker's job ended, as `jobsuite_jobs_total` counts it (docs/operations.md#metrics).
OUTCOMES = ("succeeded", "failed", "retried", "deferred", "dead")
# Seconds: a resize takes milliseconds, a large PDF or a slow SMTP server a minute or more.
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Seconds: a confirm is a round trip and, for a quorum queue, a disk sync.
CONFIRM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def exposition(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The registry in the format the scraper asks for (`Accept`): OpenMetrics, which shows
    exemplars (a count's latest trace id), or Prometheus' text format."""
    encoder, media_type = choose_encoder(accept)
    return encoder(registry), media_type


def trace_exemplar(trace_id: str | None) -> dict[str, str] | None:
    """A count's exemplar: the trace of what it counted, so a graph leads to a trace."""
    return {"trace_id": trace_id} if trace_id else None


class ConfirmLatency:
    """`jobsuite_publish_confirm_seconds{service}`: from a message's send to its broker
    confirm (or nack), observed by `shared.amqp.Channel` for each message."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self._histogram = Histogram(
            "jobsuite_publish_confirm_seconds",
            "Seconds from publishing a message to the broker's confirm of it.",
            ["service"],
            buckets=CONFIRM_BUCKETS,
            registry=registry,
        ).labels(service)

    def observe(self, seconds: float) -> None:
        self._histogram.observe(seconds)


class WorkerMetrics:
    """A worker process's job metrics, one series per job type it serves (all at zero from
    the start, so a rate is defined before the first job)."""

    def __init__(self, registry: CollectorRegistry, service: str, job_types: Iterable[str]):
        self.registry = registry
        self.jobs = Counter(
            "jobsuite_jobs",
            "Jobs settled by this worker, by type and outcome: succeeded, failed (for good at"
            " once: job.failed, dead letters), retried (to a back-off queue), deferred (to a"
            " back-off queue with the same attempt: another worker holds its one-time part),"
            " dead (no back-off step left, or over the delivery limit: job.failed, dead"
            " letters).",
            ["type", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "jobsuite_job_duration_seconds",
            "Seconds a job's handler ran (whatever its outcome).",
            ["type"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "jobsuite_jobs_in_progress",
            "Jobs on this worker's job threads now.",
            ["type"],
            registry=registry,
        )
        self.confirms = ConfirmLatency(registry, service)
        # Each series made once, here, and kept: `labels()` per count costs a lock, a lookup
        # and its label checks, several times a job.
        types = list(job_types)
        self._jobs = {(t, o): self.jobs.labels(t, o) for t in types for o in OUTCOMES}
        self._durations = {t: self.duration.labels(t) for t in types}
        self._in_progress = {t: self.in_progress.labels(t) for t in types}

    def in_hand(self, job_type: str) -> AbstractContextManager[object]:
        """`jobsuite_jobs_in_progress{type}` one up while the block runs."""
        gauge = self._in_progress.get(job_type) or self.in_progress.labels(job_type)
        return gauge.track_inprogress()

    def handler_timer(self, job_type: str) -> AbstractContextManager[object]:
        """Observes into `jobsuite_job_duration_seconds{type}` how long the block ran."""
        histogram = self._durations.get(job_type) or self.duration.labels(job_type)
        return histogram.time()

    def settled(self, job_type: str, outcome: str, trace_id: str | None = None) -> None:
        """Count a settled job; `outcome` one of OUTCOMES."""
        counter = self._jobs.get((job_type, outcome)) or self.jobs.labels(job_type, outcome)
        counter.inc(exemplar=trace_exemplar(trace_id))


@dataclass
class MetricsServer:
    """`/metrics` on a port of its own (prometheus_client's server, on a daemon thread)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` on http://host:port/metrics from a daemon thread. A port that cannot
    be bound (in use, not allowed) is a ConfigError naming METRICS_HOST and METRICS_PORT."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise ConfigError(
            f"METRICS_PORT {port} cannot be listened on at METRICS_HOST {host}: {e.strerror or e}"
        ) from None
    return MetricsServer(server, thread)
