"""`job.dead` on the events exchange, so every subscriber sees every outcome.

Only the broker writes to `audit.dead`, so the audit makes each `job.dead` itself. It records
the batch first, then publishes each of its `job.dead` events to `events` (same `event_id`,
confirmed, as the audit's own broker user), then acks. Its own copy comes back through
`audit.events` and is dropped as a duplicate of the recorded event, so the chain holds it
once. Every dead letter of a batch is announced, recorded now or before: a batch redelivered
after a crash between recording and announcing is announced then, so a subscriber may see a
`job.dead` twice (the same `event_id`) but never misses one.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.amqp import Channel, Connection
from shared.errors import AccessRefused, PublishNacked
from shared.log import get_logger
from shared.messages import Event, encode

log = get_logger(__name__)


class DeadAnnouncer:
    """Publishes the audit's `job.dead` events on one connection's confirm channel."""

    def __init__(self, connection: Connection, exchange: str) -> None:
        self.connection = connection
        self.exchange = exchange
        self._channel: Channel | None = None

    def announce(self, events: Sequence[Event]) -> None:
        """Publish and wait for the confirms. A broker that goes away raises (the batch is not
        acked, so it comes back and is announced again); a refusal is logged and let be: the
        events are recorded, and the audit's own work must not stop on a notice."""
        if not events:
            return
        if self._channel is None or not self._channel.is_open:
            self._channel = self.connection.channel(confirm=True)
        try:
            for event in events:
                self._channel.publish_nowait(
                    self.exchange,
                    "",
                    encode(event),
                    message_id=event.event_id,
                    message_type=event.event,
                )
            self._channel.wait_for_confirms()
        except (AccessRefused, PublishNacked) as e:
            log.error(
                "job_dead_not_announced",
                job_ids=[event.job_id for event in events],
                error=str(e),
                hint="the audit's broker user needs write permission on the events exchange"
                " (`jobsuite broker-users`)",
            )
