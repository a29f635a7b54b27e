"""The jobsuite runner with a handler that does nothing: what the runner itself costs per job
(decode and checks, `job.started` and `job.succeeded` confirmed, the manifest, the ack).

JOBSUITE_NAMESPACE=… python -m benchmarks.noop_worker
"""

from __future__ import annotations

from shared.blobs import BlobStore
from shared.config import settings_or_exit
from shared.heap import settle_heap
from shared.log import configure_logging
from shared.messages import Job
from shared.worker import run_worker


def noop(_job: Job, _blobs: BlobStore) -> list[str]:
    return []


def main() -> int:
    settings = settings_or_exit()
    configure_logging("noop", settings.log_level, settings.log_format)
    settle_heap()  # as the workers' entry points do
    return run_worker(settings, service="noop", handlers={"resize": noop})


if __name__ == "__main__":
    raise SystemExit(main())
