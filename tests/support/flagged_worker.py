"""The scripted worker (tests/support/scripted_worker.py) with one more switch, for replays:
a job whose params name a `fail_while` blob key fails permanently while that blob exists.
Deleting the blob "fixes the cause", so a replay of the dead job then succeeds.

    job = flagged_job(settings)           # the flag is set: the job will die
    flag_path(settings).unlink()          # the cause, fixed: a replay succeeds
"""

from __future__ import annotations

from pathlib import Path

from shared.blobs import BlobStore
from shared.config import Settings, settings_or_exit
from shared.errors import PermanentJobError
from shared.log import configure_logging
from shared.messages import Job
from shared.worker import run_worker
from tests.support.scripted_worker import scripted_handler

MODULE = "tests.support.flagged_worker"
FLAG = "flags/broken"  # the blob key whose presence fails the job


def flag_path(settings: Settings) -> Path:
    return settings.blob_dir / FLAG


def flagged_job(settings: Settings) -> Job:
    """A job that fails for good while its flag blob exists (set here)."""
    flag = flag_path(settings)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("on")
    return Job(type="resize", params={"fail_while": FLAG})


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
