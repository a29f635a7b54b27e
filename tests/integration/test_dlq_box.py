"""The dead-letter box on the real broker: what it takes, up to a limit, and gives back."""

from __future__ import annotations

import pika

from services.audit.dlq_box import dead_letters
from shared.config import Settings
from shared.messages import Job, encode
from tests.support.broker import TestBroker


def test_a_limited_take_holds_the_first_ones_counts_the_rest_and_gives_all_back(
    broker: TestBroker, settings: Settings
) -> None:
    dead = broker.names.dead_queue
    jobs = [Job(type="resize", params={"n": n}) for n in range(3)]
    for job in jobs:  # straight into the dead-letter queue (a test may; services may not)
        props = pika.BasicProperties(message_id=job.id, delivery_mode=2)
        broker.channel.basic_publish("", dead, encode(job), props)
    broker.wait_until(lambda: broker.depth(dead) == 3, 5, "three dead letters")

    with dead_letters(settings, "test-dlq-box", limit=2) as box:
        assert [h.dead.job_id for h in box.held] == [jobs[0].id, jobs[1].id]
        assert box.left == 1
    assert broker.depth(dead) == 3  # given back, none lost

    with dead_letters(settings, "test-dlq-box") as box:
        assert len(box.held) == 3 and box.left == 0
        box.drop(box.held[0])
    assert broker.depth(dead) == 2
