"""A worker whose handler does what each job's params say: the seed tutorial's `worker.py`.

It runs the real runner (`shared.worker`) on the `resize` queue of the test's namespace, so
the integration tests exercise every delivery guarantee without image work in the way.

params: `sleep` (seconds, one uninterruptible call), `busy` (seconds of Python-level work
that a time limit can interrupt), `fail` ("permanent" | "transient" | "crash"), `fail_until`
(raise TransientJobError while attempt < it), `together` (a count N: wait until N jobs with
`together` are in hand at once, each marked under `together/`; PermanentJobError after 20 s,
so a worker that cannot hold N at once fails them). Each run stores its instance in the blob store
under `runs/<job id>/<time>-<random>` so tests can count how often the handler really ran.
"""

from __future__ import annotations

import os
import time
import uuid

from shared.blobs import BlobStore, open_blob_store, output_key
from shared.config import Settings, settings_or_exit
from shared.errors import PermanentJobError, TransientJobError
from shared.events import instance_name
from shared.log import configure_logging, get_logger
from shared.messages import Job
from shared.worker import run_worker

MODULE = "tests.support.scripted_worker"
log = get_logger("scripted")


def scripted_job(**params: object) -> Job:
    """A job for this worker (it consumes the `resize` queue)."""
    return Job(type="resize", params=params)


def handler_runs(settings: Settings, job_id: str) -> list[str]:
    """The instance of every run of the handler for `job_id`, in order."""
    blobs = open_blob_store(settings)
    return [blobs.read_bytes(key).decode() for key in blobs.list(f"runs/{job_id}")]


def scripted_handler(job: Job, blobs: BlobStore) -> list[str]:
    # One blob per run, named by the time (sorted: in order) and a random part (two runs at
    # once never share one), written whole before the job goes on.
    run = f"runs/{job.id}/{time.time_ns()}-{uuid.uuid4().hex}"
    blobs.write_bytes(run, instance_name().encode())
    log.info("scripted_job_running", params=job.params)
    if "together" in job.params:
        wait_together(job, blobs, int(job.params["together"]))
    time.sleep(float(job.params.get("sleep", 0)))
    busy_until = time.monotonic() + float(job.params.get("busy", 0))
    while time.monotonic() < busy_until:
        time.sleep(0.01)
    fail = job.params.get("fail")
    if fail == "permanent":
        raise PermanentJobError("scripted permanent failure", kind="scripted")
    if fail == "transient" or job.attempt < int(job.params.get("fail_until", 0)):
        raise TransientJobError("scripted transient failure")
    if fail == "crash":
        os._exit(3)
    if fail == "exception":
        raise RuntimeError("scripted unexpected exception")
    return [blobs.write_bytes(output_key(job.id, "result.txt"), instance_name().encode())]


def wait_together(job: Job, blobs: BlobStore, count: int) -> None:
    """Block until `count` jobs (this one included) have marked themselves in hand."""
    blobs.write_bytes(f"together/{job.id}", b"")
    deadline = time.monotonic() + 20
    while len(blobs.list("together")) < count:
        if time.monotonic() > deadline:
            raise PermanentJobError(f"never {count} jobs in hand at once", kind="scripted")
        time.sleep(0.02)


def main() -> int:
    settings = settings_or_exit()
    configure_logging("scripted", settings.log_level, settings.log_format)
    return run_worker(settings, service="scripted", handlers={"resize": scripted_handler})


if __name__ == "__main__":
    raise SystemExit(main())
