"""What a delivery says about its own past, and how much of it a worker believes.

A job's `attempt` and the `x-delivery-count` header decide when a job is given up: a forged
`attempt: 999` would make its first passing fault final, a forged `x-delivery-count: 999`
would refuse it before it ran. Anyone who may publish to `jobs` can write either, so:

- `x-delivery-count` is believed only on a message the broker marks as redelivered, and only
  up to MAX_DELIVERIES (the task queue's `x-delivery-limit`: the broker never hands out a
  message returned more often). Otherwise it counts as 0, a first delivery.
- `attempt` is believed up to the retry budget (MAX_ATTEMPTS: RETRY_DELAYS_MS steps + 1),
  the most a retry of ours ever writes. Above it the job counts as attempt 1, unless the
  broker's own `x-death` says the job came back from one of our retry queues (a budget cut
  while jobs waited there): then the claim stands and the job gives up at its next fault.
Every claim not believed is logged as a warning with the claimed value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.amqp import Delivery
from shared.config import Settings
from shared.log import get_logger
from shared.messages import Job
from shared.topology import Names

log = get_logger("shared.worker")


@dataclass(frozen=True)
class DeliveryBudget:
    max_deliveries: int  # MAX_DELIVERIES, the task queues' x-delivery-limit
    max_attempts: int  # len(RETRY_DELAYS_MS) + 1
    retry_queues: frozenset[str]  # the back-off queues, as x-death names them

    @classmethod
    def of(cls, settings: Settings) -> DeliveryBudget:
        names = Names(settings.namespace)
        queues = frozenset(names.retry_queue(ms) for ms in settings.retry_delays_ms)
        return cls(settings.max_deliveries, settings.max_attempts, queues)


def believed_delivery_count(delivery: Delivery, budget: DeliveryBudget) -> int:
    """How often the broker delivered this message before, as far as it can be believed."""
    claimed = delivery.delivery_count
    if claimed == 0:
        return 0
    if delivery.redelivered and claimed <= budget.max_deliveries:
        return claimed
    log.warning(
        "delivery_count_not_believed",
        message_id=delivery.message_id,
        claimed=claimed,
        redelivered=delivery.redelivered,
        max_deliveries=budget.max_deliveries,
    )
    return 0


def believed_attempt(job: Job, delivery: Delivery, budget: DeliveryBudget) -> Job:
    """`job`, its attempt set back to 1 when it claims more than the budget allows without
    the broker's word for it."""
    if job.attempt <= budget.max_attempts or _from_retry_queue(delivery, budget.retry_queues):
        return job
    log.warning(
        "attempt_not_believed",
        job_id=job.id,
        claimed=job.attempt,
        max_attempts=budget.max_attempts,
    )
    return job.model_copy(update={"attempt": 1})


def _from_retry_queue(delivery: Delivery, retry_queues: frozenset[str]) -> bool:
    """Whether x-death says a retry queue's TTL sent this message back (RabbitMQ writes it
    when it dead-letters; the worker's own retry publishes carry none)."""
    deaths: Any = delivery.headers.get("x-death")
    if not isinstance(deaths, list):
        return False
    return any(
        isinstance(death, dict)
        and death.get("reason") == "expired"
        and death.get("queue") in retry_queues
        for death in deaths
    )
