"""Every exchange, queue, binding and argument of jobsuite, declared idempotently from here.

Names are pure helpers so tests and tools can compute them; every name takes the prefix
`<JOBSUITE_NAMESPACE>.` when a namespace is set, so parallel runs never see each other.

Retries: a failed job is published to the `jobs.retry` headers exchange with its job type as
routing key and a `jobsuite-retry-delay-ms` header picking one `jobs.retry.<delay>` queue. When the
queue's message TTL runs out the job is dead-lettered back to `jobs` with its original routing
key (the job type), so one queue per delay serves every job type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shared.config import Settings
from shared.errors import AccessRefused, BrokerUnavailable
from shared.jobtypes import JOB_TYPE_NAMES
from shared.log import get_logger

if TYPE_CHECKING:
    from shared.amqp import Channel, Connection

log = get_logger(__name__)

# Not "x-…": headers exchanges ignore x- headers when matching.
RETRY_DELAY_HEADER = "jobsuite-retry-delay-ms"
# How often a job has waited for room on a full disk (not counted as attempts; settle.py).
DISK_FULL_RETRIES_HEADER = "jobsuite-disk-full-retries"
# How often a job was deferred (JobDeferred, not counted as attempts): its next back-off step.
DEFERRALS_HEADER = "jobsuite-deferrals"


class Declarer(Protocol):
    def declare_exchange(self, name: str, kind: str) -> None: ...
    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None: ...
    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None: ...


@dataclass(frozen=True)
class Names:
    """The namespaced names of the topology."""

    namespace: str = ""

    def _n(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    @property
    def jobs_exchange(self) -> str:
        return self._n("jobs")

    @property
    def events_exchange(self) -> str:
        return self._n("events")

    @property
    def dead_exchange(self) -> str:
        return self._n("jobs.dead")

    @property
    def retry_exchange(self) -> str:
        return self._n("jobs.retry")

    def task_queue(self, job_type: str) -> str:
        return self._n(f"jobs.{job_type}")

    def retry_queue(self, delay_ms: int) -> str:
        return self._n(f"jobs.retry.{delay_ms}")

    @property
    def dead_queue(self) -> str:
        return self._n("jobs.dead")

    @property
    def audit_events_queue(self) -> str:
        return self._n("audit.events")

    @property
    def audit_dead_queue(self) -> str:
        return self._n("audit.dead")


# Quorum queues dead-letter at most once by default: a dead letter could vanish if the broker
# failed at the wrong moment. At-least-once keeps it until the target queue confirmed it
# (RabbitMQ requires reject-publish overflow for that).
_AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def task_queue_arguments(settings: Settings) -> dict[str, Any]:
    names = Names(settings.namespace)
    arguments = {
        "x-queue-type": "quorum",
        **_AT_LEAST_ONCE,
        "x-dead-letter-exchange": names.dead_exchange,
        # The broker's own poison guard; the worker dead-letters at the same count first,
        # with a job.failed event saying why.
        "x-delivery-limit": settings.max_deliveries,
    }
    if settings.task_queue_max_length:
        # Full: publishes are nacked (reject-publish above), never the oldest job dropped.
        arguments["x-max-length"] = settings.task_queue_max_length
    return arguments


def retry_queue_arguments(settings: Settings, delay_ms: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        **_AT_LEAST_ONCE,
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": Names(settings.namespace).jobs_exchange,
    }


def declare_topology(declarer: Declarer, settings: Settings) -> None:
    """Declare everything; safe to call again and again from every service."""
    names = Names(settings.namespace)
    declarer.declare_exchange(names.jobs_exchange, "direct")
    declarer.declare_exchange(names.events_exchange, "fanout")
    declarer.declare_exchange(names.dead_exchange, "fanout")
    declarer.declare_exchange(names.retry_exchange, "headers")

    for job_type in JOB_TYPE_NAMES:
        queue = names.task_queue(job_type)
        declarer.declare_queue(queue, task_queue_arguments(settings))
        declarer.bind(queue, names.jobs_exchange, job_type)

    for delay_ms in sorted(set(settings.retry_delays_ms)):
        queue = names.retry_queue(delay_ms)
        declarer.declare_queue(queue, retry_queue_arguments(settings, delay_ms))
        declarer.bind(
            queue,
            names.retry_exchange,
            arguments={"x-match": "all", RETRY_DELAY_HEADER: str(delay_ms)},
        )

    for queue, exchange in (
        (names.dead_queue, names.dead_exchange),
        (names.audit_dead_queue, names.dead_exchange),
        (names.audit_events_queue, names.events_exchange),
    ):
        declarer.declare_queue(queue, {"x-queue-type": "quorum"})
        declarer.bind(queue, exchange)


def ensure_topology(connection: Connection, settings: Settings) -> None:
    """Declare the topology on a channel of its own; a broker user without the right to
    (a least-privilege service user, docs/operations.md) checks instead that an
    administrator declared it (`jobsuite declare`), and fails clearly when not."""
    channel = connection.channel()
    try:
        declare_topology(channel, settings)
        return
    except AccessRefused as e:
        refused = str(e)
    finally:
        channel.close()
    channel = connection.channel()
    try:
        declare_topology(_Checker(channel), settings)
    except BrokerUnavailable as e:
        raise BrokerUnavailable(
            f"the topology is not declared and this broker user may not declare it ({refused});"
            f" run `jobsuite declare` as an administrator: {e}"
        ) from e
    finally:
        channel.close()
    log.debug("topology_checked", reason=refused)


class _Checker:
    """A Declarer that only checks that each exchange and queue exists (passive)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def declare_exchange(self, name: str, kind: str) -> None:
        self.channel.check_exchange(name)

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        self.channel.queue_depth(name)

    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None:
        pass  # a binding cannot be checked passively


def retry_delay_ms(settings: Settings, failed_attempt: int) -> int | None:
    """The wait before the attempt after `failed_attempt`, or None when none is left."""
    if failed_attempt > len(settings.retry_delays_ms):
        return None
    return settings.retry_delays_ms[failed_attempt - 1]
