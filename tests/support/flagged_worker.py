"""The scripted worker (tests/support/scripted_worker.py) with one more switch, for replays:
a job whose params name a `fail_while` blob key fails permanently while that blob exists.
Deleting the blob "fixes the cause", so a replay of the dead job then succeeds."""

from __future__ import annotations

from shared.blobs import BlobStore
from shared.config import settings_or_exit
from shared.errors import PermanentJobError
from shared.log import configure_logging
from shared.messages import Job
from shared.worker import run_worker
from tests.support.scripted_worker import scripted_handler


def flagged_handler(job: Job, blobs: BlobStore) -> list[str]:
    flag = job.params.get("fail_while")
    if isinstance(flag, str) and blobs.exists(flag):
        raise PermanentJobError(f"{flag} is set", kind="flagged")
    return scripted_handler(job, blobs)


def main() -> int:
    settings = settings_or_exit()
    configure_logging("flagged", settings.log_level, settings.log_format)
    return run_worker(settings, service="flagged", handlers={"resize": flagged_handler})


if __name__ == "__main__":
    raise SystemExit(main())
