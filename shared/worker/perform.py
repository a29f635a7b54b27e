"""A job's course on its job thread: `job.started`, the handler (once per job id), then
settling through the I/O thread.

The handler's outcome picks the settling: outputs -> succeed; PermanentJobError (or params
that do not decode) -> fail; TransientJobError or any unexpected exception -> retry with
back-off. A follow-up the broker refuses (its queue full) turns success into a retry: the
outputs are kept, so the next attempt only publishes again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from shared.blobs import BlobStore
from shared.errors import (
    BlobError,
    BrokerUnavailable,
    DecodeError,
    PermanentJobError,
    PublishNacked,
    TransientJobError,
)
from shared.log import get_logger
from shared.messages import Job
from shared.worker.bridge import Bridge
from shared.worker.job_thread import JobTimeLimitExceeded, RunningJob
from shared.worker.settle import Settler

Handler = Callable[[Job, BlobStore], list[str]]
"""A pure function: a job in (its inputs in the blob store), the keys of its outputs out."""

log = get_logger("shared.worker")


@dataclass(frozen=True)
class JobCourse:
    """What a job needs from its job thread: the handler, the blob store, and the I/O
    thread of the connection its delivery came from (to settle it there, and nowhere else)."""

    handler: Handler
    blobs: BlobStore
    bridge: Bridge
    settler: Settler

    def perform(self, running: RunningJob) -> None:
        """On the job thread: the job from `job.started` to its settling."""
        job, delivery, started = running.job, running.delivery, running.started
        settler = self.settler
        if running.timed_out:  # settled by its time limit while it waited for this thread
            log.warning("job_not_run_timed_out_while_waiting")
            return
        outcome = "abandoned"
        try:
            started_event = settler.source.about("job.started", job)
            self.bridge.call(partial(settler.publish_event, started_event))
            settle: Callable[[], str]
            try:
                outputs = run_handler_once(job, self.handler, self.blobs)
                settle = partial(settler.succeed, job, delivery, outputs, started)
            except (PermanentJobError, DecodeError) as e:
                settle = partial(settler.fail, job, delivery, _kind(e), str(e), started)
            except TransientJobError as e:
                settle = partial(settler.retry, job, delivery, e.kind, str(e), started)
            except Exception as e:
                log.exception("handler_crashed")
                why = f"{type(e).__name__}: {e}"
                settle = partial(settler.retry, job, delivery, "crash", why, started)
            try:
                outcome = self.bridge.call(partial(_unless_timed_out, running, settle))
            except PublishNacked as e:
                refused = partial(settler.retry, job, delivery, "publish_refused", str(e), started)
                outcome = self.bridge.call(partial(_unless_timed_out, running, refused))
        except JobTimeLimitExceeded:
            outcome = "timed_out"  # the I/O thread has settled the job already
            log.warning("job_interrupted_by_time_limit")
        except BrokerUnavailable as e:
            # Not acked: the broker redelivers the job, and its manifest stops a second run.
            log.warning("job_abandoned_connection_lost", error=str(e))
        finally:
            log.info(
                "job_finished",
                outcome=outcome,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )


def run_handler_once(job: Job, handler: Handler, blobs: BlobStore) -> list[str]:
    """The job's outputs: recalled from its manifest when an earlier delivery finished it,
    else made by the handler and then recorded (the manifest, written last)."""
    try:
        done = blobs.read_manifest(job.id)
    except (BlobError, OSError, ValueError) as e:
        raise TransientJobError(f"cannot read the output manifest: {e}") from e
    if done is not None:
        log.info("job_already_done_skipping_handler", outputs=len(done.outputs))
        return done.outputs
    outputs = handler(job, blobs)
    blobs.write_manifest(job.id, outputs, job.client)
    return outputs


def outputs_recorded(job: Job, blobs: BlobStore) -> bool:
    """Whether an earlier delivery of `job` finished (its manifest exists)."""
    try:
        return blobs.read_manifest(job.id) is not None
    except (BlobError, OSError, ValueError):
        return False


def _unless_timed_out(running: RunningJob, settle: Callable[[], str]) -> str:
    """On the I/O thread: the time limit may have settled this job already."""
    if running.timed_out:
        log.warning("late_outcome_discarded", job_id=running.job.id)
        return "timed_out"
    running.settling = True
    return settle()


def _kind(error: Exception) -> str:
    return error.kind if isinstance(error, PermanentJobError) else "invalid_params"
