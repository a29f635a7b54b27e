"""What the consumer checks of a delivery before any job thread sees it (on the I/O thread).

A message that is not a job of this worker's type is dead-lettered at once, never requeued
(it would come back forever). A job the broker delivered `MAX_DELIVERIES` times without it
ever being settled killed its worker each time: it is refused too, unless its outputs are
recorded (only its settling was lost; it goes on, to succeed at once). Its delivery count
and its attempt are taken only as far as they can be believed (`claims.py`). A job the
gateway would have refused (over a limit, a follow-up chain too deep, mail to a domain not
allowed: `shared/limits.py`) is refused with a `job.failed` of the limit's kind, never run,
under the same exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.amqp import Delivery
from shared.errors import DecodeError
from shared.jobtypes import ParamsRefused
from shared.limits import Limits, check_job
from shared.messages import Job, decode_job
from shared.tracecontext import trace_id_for
from shared.worker.claims import DeliveryBudget, believed_attempt, believed_delivery_count


@dataclass(frozen=True)
class Refusal:
    """A delivery for the dead letters, and what to log (and publish) about it."""

    log_event: str
    log_fields: dict[str, Any]
    # Set for a decodable job: a `job.failed` event of this kind goes out before the reject.
    job: Job | None = None
    failure_kind: str | None = None
    failure: str = ""


def traced(job: Job, delivery: Delivery) -> Job:
    """The job with its trace: a job that came without one (put straight on a queue) gets
    its message header's, or one derived from its id, so its events and log lines, retries
    and follow-ups carry a trace all the same."""
    if job.trace_id is not None:
        return job
    return job.model_copy(update={"trace_id": trace_id_for(job.id, None, delivery.headers)})


def check_delivery(
    delivery: Delivery,
    job_type: str,
    budget: DeliveryBudget,
    finished: Callable[[Job], bool],
    limits: Limits,
) -> Job | Refusal:
    """The job to run (with the attempt it is believed to be at), or why the delivery is
    refused."""
    try:
        job = decode_job(delivery.body)
    except DecodeError as e:
        preview = delivery.body[:120].decode("utf-8", "replace")
        return Refusal(
            "undecodable_message_dead_lettered",
            {"message_id": delivery.message_id, "error": str(e), "body_preview": preview},
        )
    if job.type != job_type:
        return Refusal("wrong_job_type_dead_lettered", {"job_id": job.id, "type": job.type})
    job = believed_attempt(job, delivery, budget)
    count = believed_delivery_count(delivery, budget)
    if count >= budget.max_deliveries and not finished(job):
        message = f"delivered {count + 1} times without finishing"
        return Refusal(
            "delivery_limit_reached",
            {"job_id": job.id, "error": message},
            job=job,
            failure_kind="delivery_limit",
            failure=message,
        )
    try:
        check_job(job, limits)
    except ParamsRefused as e:
        if not finished(job):  # done before the limits changed: it only succeeds again
            return Refusal(
                "job_over_limits_refused",
                {"job_id": job.id, "kind": e.kind, "error": str(e)},
                job=job,
                failure_kind=e.kind,
                failure=str(e),
            )
    return job
