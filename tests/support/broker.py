"""Test-side access to the real RabbitMQ: publish jobs, watch events, inspect and clean up.

Deliberately plain pika (not `shared.amqp`): the tests check the suite against the wire
format in docs/design.md ("Messages"), the way a user's own script would talk to it.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika

from shared.config import Settings
from shared.jobtypes import JOB_TYPE_NAMES
from shared.messages import Job, encode
from shared.topology import Names, declare_topology

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


# Every namespace this test session made: none may keep a queue or exchange (`leftovers`).
NAMESPACES_MADE: list[str] = []


def unique_namespace(prefix: str = "t") -> str:
    namespace = f"{prefix}-{uuid.uuid4().hex[:10]}"
    NAMESPACES_MADE.append(namespace)
    return namespace


def leftovers(namespaces: list[str]) -> tuple[list[str], list[str]]:
    """The queues and exchanges of `namespaces` still on the local broker's `/` vhost."""
    made = set(namespaces)

    def of_ours(what: str) -> list[str]:
        names = rabbitmqctl(what, "-q", "--no-table-headers", "name").split()
        return [name for name in names if name.split(".", 1)[0] in made]

    return of_ours("list_queues"), of_ours("list_exchanges")


def delete_leftovers(queues: list[str], exchanges: list[str], url: str = AMQP_URL) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
    finally:
        connection.close()


class _PikaDeclarer:
    """Lets `shared.topology` declare through a plain pika channel."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def declare_exchange(self, name: str, kind: str) -> None:
        self.channel.exchange_declare(name, exchange_type=kind, durable=True)

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        self.channel.queue_declare(name, durable=True, arguments=arguments)

    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None:
        self.channel.queue_bind(queue, exchange, routing_key=routing_key or None, **kw)


class TestBroker:
    __test__ = False  # a helper, not a test class

    """One test's view of its namespace on the broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        # The back-off steps whose retry queues the clean-up deletes: the settings' own, and
        # those services were started with (the `spawn` fixture adds them).
        self.retry_delays: set[int] = set(settings.retry_delays_ms)
        self.connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def declare(self) -> None:
        declare_topology(_PikaDeclarer(self.channel), self.settings)

    def publish_job(self, job: Job) -> None:
        self.publish_raw(encode(job), job.type, message_id=job.id, properties={"type": job.type})

    def publish_raw(
        self,
        body: bytes,
        routing_key: str = "resize",
        *,
        message_id: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id,
            **(properties or {}),
        )
        self.channel.basic_publish(
            self.names.jobs_exchange, routing_key, body, props, mandatory=True
        )

    def depth(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def consumers(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.consumer_count)

    def drain(self, queue: str) -> list[tuple[Any, bytes]]:
        """Take every message now in `queue` (acked): (properties, body) pairs."""
        taken: list[tuple[Any, bytes]] = []
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((props, body))

    def events(self) -> EventWatcher:
        return EventWatcher(self)

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            self.connection.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def delete_namespace(self) -> None:
        """Remove every queue and exchange of the namespace."""
        try:
            ch = self.connection.channel()
        except pika.exceptions.AMQPError:  # a test restarted the broker under it
            self.connection = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))
            ch = self.connection.channel()
        queues = [self.names.task_queue(t) for t in JOB_TYPE_NAMES]
        queues += [self.names.retry_queue(d) for d in sorted(self.retry_delays)]
        queues += [self.names.dead_queue, self.names.audit_dead_queue]
        queues += [self.names.audit_events_queue]
        for queue in queues:
            ch.queue_delete(queue)
        for exchange in (
            self.names.jobs_exchange,
            self.names.events_exchange,
            self.names.dead_exchange,
            self.names.retry_exchange,
        ):
            ch.exchange_delete(exchange)

    def close(self) -> None:
        try:
            self.delete_namespace()
        finally:
            if self.connection.is_open:
                self.connection.close()


class EventWatcher:
    """Every event on the namespace's `events` fanout from the moment it is made."""

    def __init__(self, broker: TestBroker) -> None:
        self.broker = broker
        ch = broker.channel
        self.queue = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(self.queue, broker.names.events_exchange)
        self.seen: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        for _props, body in self.broker.drain(self.queue):
            self.seen.append(json.loads(body))
        return self.seen

    def of(self, job_id: str, event: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.poll()
            if e["job_id"] == job_id and (event is None or e["event"] == event)
        ]

    def wait_for(self, job_id: str, event: str, count: int = 1, timeout: float = 30) -> list[dict]:
        self.broker.wait_until(
            lambda: len(self.of(job_id, event)) >= count, timeout, f"{count}x {event} of {job_id}"
        )
        return self.of(job_id, event)

    def wait_for_terminal(self, job_ids: list[str], timeout: float = 60) -> None:
        terminal = {"job.succeeded", "job.failed"}

        def all_done() -> bool:
            done = {e["job_id"] for e in self.poll() if e["event"] in terminal}
            return set(job_ids) <= done

        self.broker.wait_until(all_done, timeout, f"{len(job_ids)} jobs to finish")


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=True
    )
    return result.stdout


def close_connections_named(prefix: str) -> int:
    """Close, from the broker side, every connection whose client-given name starts with
    `prefix`; returns how many were closed."""
    out = rabbitmqctl("list_connections", "pid", "client_properties", "-q", "--no-table-headers")
    pids = [
        pid
        for pid, _, props in (row.partition("\t") for row in out.splitlines())
        if f'{{"connection_name","{prefix}' in props
    ]
    # One rabbitmqctl call takes a second or more (an Erlang VM starts each time): closing
    # them one after another would take the connections down over many seconds, not at once.
    with ThreadPoolExecutor(max(1, len(pids))) as closers:
        list(
            closers.map(
                lambda pid: rabbitmqctl("close_connection", pid, "closed by a jobsuite test"), pids
            )
        )
    return len(pids)


def stop_broker_app() -> None:
    rabbitmqctl("stop_app")


def start_broker_app() -> None:
    """Start the RabbitMQ app and wait until it serves; tests call it in a `finally`."""
    rabbitmqctl("start_app", timeout=120)
    rabbitmqctl("await_startup", timeout=120)
    deadline = time.monotonic() + 60
    while not broker_reachable():
        if time.monotonic() > deadline:
            raise AssertionError("RabbitMQ did not come back after start_app")
        time.sleep(0.5)


def broker_reachable(url: str = AMQP_URL) -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
        return True
    except pika.exceptions.AMQPError:
        return False
