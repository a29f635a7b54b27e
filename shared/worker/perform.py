"""A job's course on its job thread: the handler (once per job id), then settling through
the I/O thread (which sent `job.started` when it handed the job over).

The handler's outcome picks the settling: outputs -> succeed; a full disk (ENOSPC, EDQUOT,
however wrapped) -> wait for room, a long back-off not counted as an attempt; JobDeferred
(another worker holds the job's one-time part) -> the same attempt after a back-off;
PermanentJobError (or params that do not decode), or a symbolic link met in the blob store ->
fail; TransientJobError or any unexpected exception -> retry with back-off. A follow-up the broker
refuses (its queue full) turns success into a retry: the outputs are kept, so the next
attempt only publishes again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from shared.blobs import BlobStore
from shared.errors import (
    BlobError,
    BlobLinkError,
    BrokerUnavailable,
    DecodeError,
    JobDeferred,
    PermanentJobError,
    PublishNacked,
    TransientJobError,
)
from shared.files import disk_full_cause
from shared.log import get_logger
from shared.messages import Job
from shared.spans import NO_SPANS, Spans
from shared.worker.bridge import Bridge
from shared.worker.job_thread import JobTimeLimitExceeded, RunningJob
from shared.worker.one_run import one_run_of
from shared.worker.output_budget import BudgetedBlobs, OutputLimitExceeded
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
    spans: Spans = NO_SPANS  # `handler` and `settle` spans (shared/spans.py)

    def perform(self, running: RunningJob) -> None:
        """On the job thread: the job from `job.started` to its settling. A settling the I/O
        thread takes straight from here (bridge.HandOver) is finished there: the job's
        `job_finished` line, its in-progress gauge and its end (`running.done`)."""
        if running.timed_out:  # settled by its time limit while it waited for this thread
            log.warning("job_not_run_timed_out_while_waiting")
            return
        metrics = self.settler.metrics
        in_hand = ExitStack()
        if metrics:
            in_hand.enter_context(metrics.in_hand(running.job.type))
        handed = False
        try:
            handed = self._run_and_settle(running, in_hand.close)
        except Exception as e:
            self._course_failed(e)
        finally:
            if not handed:
                in_hand.close()

    def _course_failed(self, error: Exception) -> None:
        # A bug in the job's course, not in its handler (whose errors pick a settling).
        # Its delivery may be unsettled, and with prefetch 1 an unsettled delivery on a
        # connection that stays up stops this consumer for good: drop the connection,
        # so the broker takes the job back. Its manifest and the mail ledger stop a
        # second run's effects; MAX_DELIVERIES bounds a job that fails so every time.
        log.exception("job_course_failed")
        why = f"{type(error).__name__}: {error}"
        self.bridge.give_up(
            f"a job's course failed ({why}); reconnecting: the job goes back to its queue"
        )

    def _run_and_settle(self, running: RunningJob, out_of_hand: Callable[[], object]) -> bool:
        """The handler, then the settling: given to the I/O thread when it still waits for
        this job (True: it finishes the job, `out_of_hand` included), else called through
        the I/O loop and waited for here (False)."""
        job, delivery = running.job, running.delivery
        metrics = self.settler.metrics
        outcome = "abandoned"
        try:
            settle: Callable[[], str]
            try:
                max_bytes = self.settler.settings.max_output_bytes
                with (
                    metrics.handler_timer(job.type) if metrics else nullcontext(),
                    self.spans.job("handler", job, delivery.headers) as span,
                ):
                    outputs = run_handler_once(job, self.handler, self.blobs, max_bytes)
                    span.set("outcome", "succeeded")
                settle = partial(self.settler.succeed, job, delivery, outputs, running.started)
            except JobTimeLimitExceeded:
                raise
            except BaseException as e:  # SystemExit from a library, say: this job's crash
                settle = settling_of(_as_exception(e), running, self.settler)
            finish = partial(self._settle_and_finish, running, settle, out_of_hand)
            if self.bridge.hand(finish, running.hand_over):
                return True
            outcome = self.bridge.call(partial(self._settle, running, settle))
        except JobTimeLimitExceeded:
            outcome = "timed_out"  # the I/O thread has settled the job already
            log.warning("job_interrupted_by_time_limit")
        except BrokerUnavailable as e:
            # Not acked: the broker redelivers the job, and its manifest stops a second run.
            log.warning("job_abandoned_connection_lost", error=str(e))
        _log_finished(running, outcome)
        return False

    def _settle(self, running: RunningJob, settle: Callable[[], str]) -> str:
        """On the I/O thread: `settle`; when the broker refuses the outcome (a follow-up's
        queue full), a retry instead."""
        try:
            return _unless_timed_out(running, settle, self.spans)
        except PublishNacked as e:
            job, delivery = running.job, running.delivery
            refused = partial(
                self.settler.retry, job, delivery, "publish_refused", str(e), running.started
            )
            return _unless_timed_out(running, partial(settle_or_reconnect, refused), self.spans)

    def _settle_and_finish(
        self, running: RunningJob, settle: Callable[[], str], out_of_hand: Callable[[], object]
    ) -> None:
        """On the I/O thread, handed over by the job thread, which has gone on: the settling,
        then what the job thread does after one it waited for; the job ends here."""
        outcome = "abandoned"
        try:
            outcome = self._settle(running, settle)
        except BrokerUnavailable as e:
            log.warning("job_abandoned_connection_lost", error=str(e))
            raise  # the connection's failure (IoBridge.hand): the I/O loop reconnects
        except Exception as e:
            self._course_failed(e)
        finally:
            _log_finished(running, outcome)
            out_of_hand()
            running.done.set()


def _log_finished(running: RunningJob, outcome: str) -> None:
    duration = round((time.monotonic() - running.started) * 1000, 1)
    log.info("job_finished", outcome=outcome, duration_ms=duration)


def settle_or_reconnect(settle: Callable[[], str]) -> str:
    """On the I/O thread: `settle`, or, should the broker refuse that too (as while a quorum
    queue elects a new leader after a node died), BrokerUnavailable: the I/O loop drops the
    connection, the broker takes the job back with it, and it comes again after the
    reconnect's back-off. Held unsettled instead, it would stop this consumer for good
    (prefetch 1 on a connection that stays up)."""
    try:
        return settle()
    except PublishNacked as e:
        raise BrokerUnavailable(
            f"the broker refused the job's outcome and then its retry ({e});"
            " reconnecting: the job goes back to its queue"
        ) from e


def settling_of(error: Exception, running: RunningJob, settler: Settler) -> Callable[[], str]:
    """How a job whose handler raised `error` is settled. A full disk first, whatever it was
    wrapped in: no job is to blame, so it waits for room (settle.py)."""
    job, delivery, started = running.job, running.delivery, running.started
    if (cause := disk_full_cause(error)) is not None:
        return partial(settler.wait_for_room, job, delivery, f"the disk is full: {cause}", started)
    if isinstance(error, JobDeferred):  # another worker is doing its one-time part
        return partial(settler.defer, job, delivery, error.kind, str(error), started)
    if isinstance(error, BlobLinkError):  # planted to lead outside the store: never retried
        return partial(settler.fail, job, delivery, "blob_link", str(error), started)
    if isinstance(error, (PermanentJobError, DecodeError)):
        return partial(settler.fail, job, delivery, _kind(error), str(error), started)
    if isinstance(error, TransientJobError):
        return partial(settler.retry, job, delivery, error.kind, str(error), started)
    log.exception("handler_crashed")
    why = f"{type(error).__name__}: {error}"
    return partial(settler.retry, job, delivery, "crash", why, started)


def run_handler_once(
    job: Job, handler: Handler, blobs: BlobStore, max_output_bytes: int
) -> list[str]:
    """The job's outputs: recalled from its manifest when an earlier delivery finished it,
    else made by the handler within MAX_OUTPUT_BYTES and then recorded (the manifest,
    written last). An earlier delivery still running in this process is waited for."""
    with one_run_of(job.id):
        return _run_handler_once(job, handler, blobs, max_output_bytes)


def _run_handler_once(
    job: Job, handler: Handler, blobs: BlobStore, max_output_bytes: int
) -> list[str]:
    try:
        done = blobs.read_manifest(job.id)
    except BlobLinkError:
        raise
    except (BlobError, OSError, ValueError) as e:
        raise TransientJobError(f"cannot read the output manifest: {e}") from e
    if done is not None:
        log.info("job_already_done_skipping_handler", outputs=len(done.outputs))
        return done.outputs
    try:
        outputs = handler(job, BudgetedBlobs(blobs, max_output_bytes))
    except OutputLimitExceeded:
        _discard_outputs(job, blobs)
        raise
    blobs.write_manifest(job.id, outputs, job.client)
    return outputs


def _discard_outputs(job: Job, blobs: BlobStore) -> None:
    try:
        blobs.delete_prefix(f"outputs/{job.id}")
    except (BlobError, OSError) as e:  # the job fails all the same; say what is left
        log.error("outputs_over_the_limit_not_deleted", error=str(e))


def outputs_recorded(job: Job, blobs: BlobStore) -> bool:
    """Whether an earlier delivery of `job` finished (its manifest exists)."""
    try:
        return blobs.read_manifest(job.id) is not None
    except (BlobError, OSError, ValueError):
        return False


def _unless_timed_out(
    running: RunningJob, settle: Callable[[], str], spans: Spans = NO_SPANS
) -> str:
    """On the I/O thread: the time limit may have settled this job already."""
    if running.timed_out:
        log.warning("late_outcome_discarded", job_id=running.job.id)
        return "timed_out"
    running.settling = True
    return settle_in_span(spans, running.job, running.delivery.headers, settle)


def settle_in_span(
    spans: Spans, job: Job, headers: Mapping[str, Any], settle: Callable[[], str]
) -> str:
    """`settle()` in a `settle` span: what it publishes (a follow-up, a retry) names that
    span as its parent."""
    with spans.job("settle", job, headers) as span:
        outcome = settle()
        span.set("outcome", outcome)
        if outcome != "succeeded":
            span.fail(outcome)
        return outcome


def _as_exception(error: BaseException) -> Exception:
    """A handler's error as an Exception: a BaseException other than the time limit's (a
    library's SystemExit, say) is a crash of that job. Let through, it would end the job's
    thread and leave its delivery unsettled on a connection that stays up."""
    if isinstance(error, Exception):
        return error
    return RuntimeError(f"the handler raised {type(error).__name__}: {error}")


def _kind(error: Exception) -> str:
    return error.kind if isinstance(error, PermanentJobError) else "invalid_params"
