"""Commands that talk to RabbitMQ directly: declare the topology, list queues, exchanges and
bindings (what `rabbitmqctl list_queues|list_exchanges|list_bindings` shows, without
rabbitmqctl), and put a resize job straight on the broker (what the gateway does).

The lists come from the management HTTP API when it is enabled (MANAGEMENT_URL, by default
port 15672 of the AMQP host, with the AMQP credentials). Without it `queues` falls back to
AMQP passive declares of jobsuite's own queues, and `exchanges`/`bindings` show what
shared/topology.py declares, each saying so.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlparse

import httpx
import typer
from rich.table import Table

from cli.common import console, err_console, fail, readable_errors, settings
from shared.amqp import Channel, Connection, connect_once
from shared.blobs import input_key, open_blob_store
from shared.config import Settings
from shared.errors import BrokerError, ConfigError, JobsuiteError
from shared.events import EventSource, instance_name
from shared.messages import Job, decode_event, encode
from shared.topology import Names, declare_topology

TERMINAL = {"job.succeeded", "job.failed", "job.dead"}


def register(app: typer.Typer) -> None:
    app.command("declare")(declare)
    app.command("queues")(queues)
    app.command("exchanges")(exchanges)
    app.command("bindings")(bindings)
    app.command("enqueue")(enqueue)


class ManagementUnavailable(JobsuiteError):
    """The management HTTP API is not enabled or not reachable."""


class _Topology:
    """What shared/topology.py declares, recorded instead of sent."""

    def __init__(self, settings: Settings) -> None:
        self.exchanges: list[tuple[str, str]] = []
        self.queues: list[str] = []
        self.bindings: list[tuple[str, str, str, dict[str, Any]]] = []
        declare_topology(self, settings)

    def declare_exchange(self, name: str, kind: str) -> None:
        self.exchanges.append((name, kind))

    def declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        self.queues.append(name)

    def bind(self, queue: str, exchange: str, routing_key: str = "", **kw: Any) -> None:
        self.bindings.append((exchange, queue, routing_key, kw.get("arguments") or {}))


def management_url(s: Settings) -> str:
    host = urlparse(s.amqp_urls[0]).hostname or "localhost"
    return (s.management_url or f"http://{host}:15672").rstrip("/")


def management_login(s: Settings) -> tuple[str, str]:
    """The management API's login: AMQP_URL's (first node's) user and password."""
    amqp = urlparse(s.amqp_urls[0])
    return (unquote(amqp.username or "guest"), unquote(amqp.password or "guest"))


def amqp_vhost(s: Settings) -> str:
    return unquote(urlparse(s.amqp_urls[0]).path[1:]) or "/"


def _management(s: Settings, what: str) -> list[dict[str, Any]]:
    """GET /api/<what>/<vhost> of the management API, limited to the namespace."""
    url = f"{management_url(s)}/api/{what}/{quote(amqp_vhost(s), safe='')}"
    try:
        response = httpx.get(url, auth=management_login(s), timeout=5)
    except httpx.HTTPError as e:
        raise ManagementUnavailable(
            f"the RabbitMQ management API is not enabled or not reachable at"
            f" {management_url(s)} ({type(e).__name__}); enable it with"
            " `rabbitmq-plugins enable rabbitmq_management` or set MANAGEMENT_URL"
        ) from None
    if response.status_code != 200:
        raise ManagementUnavailable(
            f"the RabbitMQ management API at {management_url(s)} answered"
            f" {response.status_code} for the AMQP credentials"
        )
    prefix = f"{s.namespace}." if s.namespace else ""
    rows: list[dict[str, Any]] = response.json()

    def ours(*names: str) -> bool:
        return any(n.startswith(prefix) for n in names)

    if what == "bindings":  # the default exchange's implicit bindings are left out
        return [r for r in rows if r["source"] and ours(r["source"], r["destination"])]
    return [r for r in rows if r["name"] and ours(r["name"])]


def _listing(
    s: Settings, what: str, fallback: Callable[[Settings, str], None]
) -> list[dict[str, Any]] | None:
    """The management API's rows, or None after `fallback` showed what it could."""
    try:
        return _management(s, what)
    except ManagementUnavailable as e:
        fallback(s, str(e))
        return None


@readable_errors
def declare() -> None:
    """Declare every exchange, queue and binding (idempotent)."""
    s = settings()
    _channel(s)
    where = f" in namespace {s.namespace}" if s.namespace else ""
    console.print(f"topology declared{where}")


@readable_errors
def queues() -> None:
    """Each queue with messages ready, unacknowledged and consumers."""
    s = settings()
    rows = _listing(s, "queues", _queues_by_amqp)
    if rows is None:
        return
    table = Table("queue", "ready", "unacked", "consumers")
    for q in sorted(rows, key=lambda r: r["name"]):
        counts = (q.get(k, 0) for k in ("messages_ready", "messages_unacknowledged", "consumers"))
        table.add_row(q["name"], *(str(c) for c in counts))
    console.print(table)


def _queues_by_amqp(s: Settings, why: str) -> None:
    err_console.print(
        f"note: {why}. Showing jobsuite's queues via AMQP instead (no unacked).", soft_wrap=True
    )
    connection = _connection(s)
    table = Table("queue", "ready", "unacked", "consumers")
    try:
        for queue in _Topology(s).queues:
            try:
                ready, consumers = connection.channel().queue_depth(queue)
                table.add_row(queue, str(ready), "?", str(consumers))
            except BrokerError:  # a missing queue closes its channel: the next gets a new one
                table.add_row(queue, "not declared", "", "")
    finally:
        connection.close()
    console.print(table)


@readable_errors
def exchanges() -> None:
    """Each exchange with its type."""
    s = settings()
    rows = _listing(s, "exchanges", _declared_exchanges)
    if rows is None:
        return
    table = Table("exchange", "type", "durable")
    for x in sorted(rows, key=lambda r: r["name"]):
        table.add_row(x["name"], x["type"], str(x.get("durable", "")))
    console.print(table)


def _declared_exchanges(s: Settings, why: str) -> None:
    err_console.print(
        f"note: {why}. Showing the exchanges jobsuite declares instead.", soft_wrap=True
    )
    table = Table("exchange", "type", "durable")
    for name, kind in _Topology(s).exchanges:
        table.add_row(name, kind, "True")
    console.print(table)


@readable_errors
def bindings() -> None:
    """Each binding: exchange → queue, routing key, arguments."""
    s = settings()
    rows = _listing(s, "bindings", _declared_bindings)
    if rows is None:
        return
    table = Table("exchange", "queue", "routing key", "arguments")
    for b in sorted(rows, key=lambda r: (r["source"], r["destination"])):
        table.add_row(b["source"], b["destination"], b["routing_key"], _args(b.get("arguments")))
    console.print(table)


def _declared_bindings(s: Settings, why: str) -> None:
    err_console.print(
        f"note: {why}. Showing the bindings jobsuite declares instead.", soft_wrap=True
    )
    table = Table("exchange", "queue", "routing key", "arguments")
    for exchange, queue, key, arguments in _Topology(s).bindings:
        table.add_row(exchange, queue, key, _args(arguments))
    console.print(table)


def _args(arguments: dict[str, Any] | None) -> str:
    return json.dumps(arguments, sort_keys=True) if arguments else ""


def _channel(s: Settings) -> Channel:
    channel = _connection(s).channel(confirm=True)
    declare_topology(channel, s)
    return channel


def _connection(s: Settings) -> Connection:
    return connect_once(s, f"jobsuite-cli:{instance_name()}")


@readable_errors
def enqueue(
    file: Annotated[Path, typer.Argument(help="the image to resize")],
    width: Annotated[int | None, typer.Option()] = None,
    height: Annotated[int | None, typer.Option()] = None,
    fit: Annotated[str | None, typer.Option(help="contain, cover or exact")] = None,
    format: Annotated[str | None, typer.Option(help="jpeg, png or webp")] = None,
    quality: Annotated[int | None, typer.Option()] = None,
    wait: Annotated[bool, typer.Option(help="wait for the outcome and print it")] = False,
    timeout: Annotated[float, typer.Option()] = 60.0,
) -> None:
    """Put a resize job straight on the broker (input into the blob store first)."""
    if not file.is_file():
        raise fail(f"no such file: {file}", 2)
    s = settings()
    candidates = {"width": width, "height": height, "fit": fit, "format": format}
    params = {k: v for k, v in {**candidates, "quality": quality}.items() if v is not None}
    names = Names(s.namespace)
    job = Job(type="resize", params=params)
    key = input_key(job.id, "input" + file.suffix.lower())
    try:
        with open_blob_store(s).open_write(key) as out, file.open("rb") as src:
            shutil.copyfileobj(src, out)
    except (ConfigError, OSError) as e:  # a missing bucket; a store down or full
        raise fail(f"cannot store the input: {e}", 1) from None
    job = job.model_copy(update={"inputs": [key]})

    channel = _channel(s)
    watch = channel.declare_private_queue() if wait else None
    if watch:
        channel.bind(watch, names.events_exchange)
    channel.publish(
        names.jobs_exchange, job.type, encode(job), message_id=job.id, message_type=job.type
    )
    submitted = EventSource("cli", instance_name()).about("job.submitted", job)
    channel.publish(
        names.events_exchange,
        "",
        encode(submitted),
        message_id=submitted.event_id,
        message_type=submitted.event,
    )
    console.print(job.id, highlight=False)
    if watch and not _wait(channel, watch, job.id, timeout):
        raise typer.Exit(1)


def _wait(channel: Channel, queue: str, job_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = channel.get(queue)
        if delivery is None:
            time.sleep(0.1)
            continue
        channel.ack(delivery)
        event = decode_event(delivery.body)
        if event.job_id == job_id and event.event in TERMINAL:
            console.print_json(json.dumps(event.model_dump(mode="json", exclude_none=True)))
            return event.event == "job.succeeded"
    raise fail(f"no outcome for {job_id} within {timeout:.0f} s")
