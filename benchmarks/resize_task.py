"""A resize job's work outside jobsuite's runner: what the Celery and Dramatiq anchors run per
task (benchmarks/celery_app.py, benchmarks/dramatiq_app.py), and plain pika's worker per
message with BENCH_WORK=resize (benchmarks/pika_events_worker.py). The resizer's own handler
on the job's message body, its outputs in the folder blob store at BLOB_DIR; no manifest, no
events."""

from __future__ import annotations

from functools import cache

from services.resizer.handler import resize_job
from shared.blobs import FolderBlobStore
from shared.config import Settings
from shared.jobtypes import RESIZE
from shared.jobtypes.resize import ResizeLimits
from shared.messages import decode_job


def resize_message(body: str) -> list[str]:
    """Do the resize job whose message body is `body`; its output keys."""
    blobs, limits = _store()
    return resize_job(decode_job(body.encode()), blobs, limits)


@cache
def _store() -> tuple[FolderBlobStore, ResizeLimits]:
    """Read from the environment at the first job, not at import: a bench process that only
    sends tasks imports the anchors' modules too."""
    settings = Settings.from_env()
    return FolderBlobStore(settings.blob_dir), RESIZE.limits(settings)
