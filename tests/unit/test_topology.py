from __future__ import annotations

from typing import Any

import pytest

from shared.amqp import compute_backoff
from shared.config import Settings
from shared.topology import (
    RETRY_DELAY_HEADER,
    Names,
    declare_topology,
    retry_delay_ms,
    task_queue_arguments,
)


class RecordingDeclarer:
    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.bindings: list[tuple[str, str, str, dict[str, Any]]] = []

    def declare_exchange(self, name: str, kind: str) -> None:
        self.exchanges[name] = kind

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        self.queues[name] = arguments

    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None:
        self.bindings.append((queue, exchange, routing_key, kw.get("arguments") or {}))


def test_names_take_the_namespace_prefix() -> None:
    assert Names().task_queue("resize") == "jobs.resize"
    assert Names("ci-1").task_queue("resize") == "ci-1.jobs.resize"
    assert Names("ci-1").events_exchange == "ci-1.events"
    assert Names("ci-1").retry_queue(500) == "ci-1.jobs.retry.500"


def test_the_topology_matches_the_design() -> None:
    d = RecordingDeclarer()
    settings = Settings(namespace="ns", retry_delays_ms=(100, 200), max_deliveries=4)
    declare_topology(d, settings)

    assert d.exchanges == {
        "ns.jobs": "direct",
        "ns.events": "fanout",
        "ns.jobs.dead": "fanout",
        "ns.jobs.retry": "headers",
    }
    for job_type in ("resize", "render", "mail"):
        args = d.queues[f"ns.jobs.{job_type}"]
        assert args["x-queue-type"] == "quorum"
        assert args["x-dead-letter-exchange"] == "ns.jobs.dead"
        assert args["x-delivery-limit"] == 4
        assert args["x-dead-letter-strategy"] == "at-least-once"
        assert (f"ns.jobs.{job_type}", "ns.jobs", job_type, {}) in d.bindings
    assert d.queues["ns.jobs.retry.100"]["x-message-ttl"] == 100
    assert d.queues["ns.jobs.retry.200"]["x-dead-letter-exchange"] == "ns.jobs"
    assert ("ns.audit.events", "ns.events", "", {}) in d.bindings
    assert ("ns.jobs.dead", "ns.jobs.dead", "", {}) in d.bindings
    assert ("ns.audit.dead", "ns.jobs.dead", "", {}) in d.bindings


def test_retry_bindings_match_on_a_header_the_headers_exchange_does_not_ignore() -> None:
    d = RecordingDeclarer()
    declare_topology(d, Settings(retry_delays_ms=(100, 200)))
    retry = [b for b in d.bindings if b[1] == "jobs.retry"]
    assert {b[3][RETRY_DELAY_HEADER] for b in retry} == {"100", "200"}
    # RabbitMQ leaves x- headers out of headers-exchange matching: such a binding would
    # match every message and send each retry to every delay queue.
    assert not RETRY_DELAY_HEADER.startswith("x-")


def test_retry_delay_steps_then_none() -> None:
    s = Settings(retry_delays_ms=(100, 200))
    assert [retry_delay_ms(s, a) for a in (1, 2, 3)] == [100, 200, None]


def test_backoff_is_jittered_and_capped() -> None:
    waits = [
        compute_backoff(attempt, base=0.5, cap=4.0) for attempt in range(12) for _ in range(20)
    ]
    assert all(0 <= w <= 4.0 for w in waits)
    assert max(compute_backoff(0, base=0.5) for _ in range(50)) <= 0.5
    assert len({round(w, 6) for w in waits}) > 100


def test_a_handshake_timeout_is_a_broker_error_not_a_crash() -> None:
    from pika.adapters.utils.connection_workflow import AMQPConnectorStackTimeout

    from shared.amqp.errors import broker_errors
    from shared.errors import BrokerUnavailable

    with pytest.raises(BrokerUnavailable, match="AMQPConnectorStackTimeout"), broker_errors("x"):
        raise AMQPConnectorStackTimeout("Timeout during AMQP handshake")


def test_task_queues_get_a_max_length_only_when_one_is_set() -> None:
    assert "x-max-length" not in task_queue_arguments(Settings())
    bounded = task_queue_arguments(Settings(task_queue_max_length=1000))
    assert bounded["x-max-length"] == 1000
    # A full queue must refuse new jobs, never drop the oldest (the default drop-head).
    assert bounded["x-overflow"] == "reject-publish"
