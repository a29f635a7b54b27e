"""The gateway's own metrics: jobs accepted, by type, and its publisher-confirm latency.

One registry per gateway app (`GatewayMetrics.registry`), served with the HTTP metrics on
`GET /metrics` (shared/http_metrics.py); with GATEWAY_WORKERS above 1, what every worker
process counted is served instead (`served`, shared/multiprocess_metrics.py).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from shared.jobtypes import JOB_TYPE_NAMES
from shared.messages import Job
from shared.metrics import ConfirmLatency, trace_exemplar
from shared.multiprocess_metrics import collected_from

SERVICE = "gateway"


class GatewayMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, served_from: Path | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry()
        # GET /metrics: this registry, or every worker's counts in `served_from`
        self.served = collected_from(served_from) if served_from else self.registry
        self.submitted = Counter(
            "jobsuite_jobs_submitted",
            "Jobs the gateway accepted (confirmed by the broker, answered 202), by type; not"
            " idempotent replays, not refusals.",
            ["type"],
            registry=self.registry,
        )
        for job_type in JOB_TYPE_NAMES:
            self.submitted.labels(job_type)
        self.confirms = ConfirmLatency(self.registry, SERVICE)

    def accepted(self, job: Job) -> None:
        self.submitted.labels(job.type).inc(exemplar=trace_exemplar(job.trace_id))
