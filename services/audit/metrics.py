"""The audit service's own metrics: events recorded, by name, and how far it lags behind
its events queue.

The lag is the count of messages ready in `audit.events` (delivered to nobody yet), asked of
the broker every `LAG_EVERY_S` seconds with a passive queue.declare on a channel of its own,
on the consumer's connection and thread: one small round trip, and what an operator would
read off the management UI. It leaves out the batch the audit holds unacked (at most
BATCH_MAX), and between probes it is up to LAG_EVERY_S old.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.amqp import Channel, Connection
from shared.errors import BrokerError
from shared.event_names import EVENT_NAMES
from shared.log import get_logger

log = get_logger(__name__)
LAG_EVERY_S = 5.0


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "jobsuite_audit_events",
            "Events the audit recorded (log written, read model updated), by event name;"
            " dead letters count as job.dead.",
            ["event"],
            registry=self.registry,
        )
        for name in EVENT_NAMES:
            self.events.labels(name)
        self.lag = Gauge(
            "jobsuite_audit_lag_events",
            f"Messages ready in the audit's events queue, not yet delivered to it (a passive"
            f" queue.declare every {LAG_EVERY_S:g} s).",
            registry=self.registry,
        )

    def recorded(self, event: str) -> None:
        self.events.labels(event).inc()


class LagProbe:
    """Sets the lag gauge from a passive declare of `queue`, at most every `every` seconds.
    Runs on the connection's own thread; a failed probe leaves the gauge as it was."""

    def __init__(
        self,
        connection: Connection,
        queue: str,
        metrics: AuditMetrics,
        *,
        every: float = LAG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.queue = queue
        self.metrics = metrics
        self.every = every
        self.clock = clock
        self._next = 0.0
        self._channel: Channel | None = None

    def probe_when_due(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.every
        try:
            if self._channel is None or not self._channel.is_open:
                # Its own channel: a failed passive declare closes the channel it was sent on.
                self._channel = self.connection.channel()
            ready, _consumers = self._channel.queue_depth(self.queue)
        except BrokerError as e:
            self._channel = None
            log.warning("audit_lag_unknown", queue=self.queue, error=str(e))
            return
        self.metrics.lag.set(ready)
