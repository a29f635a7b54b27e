"""The dead letters in `jobs.dead`, taken and held for one command (`jobsuite dlq`, the
console's dead-letters page), then replayed, dropped, or given back.

The dead letters are taken with basic.get and held unacked while the block runs; whatever is
not replayed or dropped goes back to the queue when its connection closes. Replay publishes
the job (attempt 1) with a confirm, then a `job.replayed` event, and only then acks the dead
letter: a failure half-way leaves the dead letter where it was. The audit service's own copy
(in `audit.dead`) is separate and unaffected.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services.audit.deadletters import DeadLetter, read_dead_letter
from shared.amqp import Channel, Delivery, connect_once
from shared.config import Settings
from shared.errors import BrokerError
from shared.events import EventSource
from shared.messages import Job, encode, utc_now
from shared.topology import Names, ensure_topology

RETURN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Held:
    delivery: Delivery
    dead: DeadLetter


class Box:
    """The dead letters taken off `jobs.dead` for one command, held unacked."""

    def __init__(self, channel: Channel, held: list[Held], names: Names) -> None:
        self.channel = channel
        self.held = held
        self.names = names
        self.settled = 0
        self.left = 0  # dead letters left in the queue, past a limit on what was taken

    def drop(self, h: Held) -> None:
        """Ack: the dead letter leaves the queue for good."""
        self.channel.ack(h.delivery)
        self.settled += 1

    def replay(self, h: Held, source: EventSource) -> Job:
        """Back on its queue as a new life (attempt 1), announced by `job.replayed`, then the
        dead letter acked. `h.dead.job` must be a job (a body that is not one can only be
        dropped)."""
        assert h.dead.job is not None
        # A new submitted_at marks the job's new life for the audit's lifecycle order.
        job = h.dead.job.model_copy(update={"attempt": 1, "submitted_at": utc_now()})
        names = self.names
        self.channel.publish(
            names.jobs_exchange, job.type, encode(job), message_id=job.id, message_type=job.type
        )
        event = source.about("job.replayed", job, at=job.submitted_at)
        self.channel.publish(
            names.events_exchange,
            "",
            encode(event),
            message_id=event.event_id,
            message_type=event.event,
        )
        self.drop(h)
        return job


@contextmanager
def dead_letters(s: Settings, connection_name: str, limit: int | None = None) -> Iterator[Box]:
    """Every dead letter now in `jobs.dead` (or the first `limit`), held unacked until the
    block ends; what was not dropped then goes back to the queue."""
    names = Names(s.namespace)
    connection = connect_once(s, connection_name)
    box: Box | None = None
    try:
        ensure_topology(connection, s)
        box = Box(connection.channel(confirm=True), [], names)
        while limit is None or len(box.held) < limit:
            if (d := box.channel.get(names.dead_queue)) is None:
                break
            box.held.append(Held(d, read_dead_letter(d.body, d.headers, d.message_id, None)))
        else:
            box.left = box.channel.queue_depth(names.dead_queue)[0]
        yield box
    finally:
        connection.close()
        if box is not None:
            with contextlib.suppress(BrokerError):
                _wait_until_returned(s, connection_name, len(box.held) - box.settled)


def _wait_until_returned(s: Settings, connection_name: str, count: int) -> None:
    """A quorum queue takes back released messages a moment after the connection closed:
    wait for that, so the next command sees every dead letter."""
    if count <= 0:
        return
    connection = connect_once(s, connection_name)
    try:
        channel = connection.channel()
        deadline = time.monotonic() + RETURN_TIMEOUT_S
        while (
            channel.queue_depth(Names(s.namespace).dead_queue)[0] < count
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    finally:
        connection.close()


def summary(h: Held, errors: dict[str, Any]) -> dict[str, Any]:
    """One dead letter as `jobsuite dlq list --json` and the console show it."""
    d = h.dead
    return {
        "job_id": d.job_id,
        "type": d.type,
        "reason": d.reason,
        "queue": d.queue,
        "attempt": d.job.attempt if d.job else None,
        "deaths": d.count,
        "died_at": d.died_at.isoformat() if d.died_at else None,
        "error": errors.get(d.job_id)
        or ({"kind": "invalid_job", "message": d.body_error} if d.body_error else None),
    }
