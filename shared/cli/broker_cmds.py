"""Commands that talk to RabbitMQ directly: declare the topology, show the queues, and put a
resize job straight on the broker (what the gateway does, for use without it)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared.amqp import Channel, connect_once
from shared.blobs import FolderBlobStore, input_key
from shared.cli.common import console, fail, readable_errors, settings
from shared.config import Settings
from shared.events import EventSource, instance_name
from shared.messages import JOB_TYPES, Job, decode_event, encode
from shared.topology import Names, declare_topology

TERMINAL = {"job.succeeded", "job.failed", "job.dead"}


def register(app: typer.Typer) -> None:
    app.command("declare")(declare)
    app.command("queues")(queues)
    app.command("enqueue")(enqueue)


def _channel(s: Settings) -> Channel:
    connection = connect_once(s, f"jobsuite-cli:{instance_name()}")
    channel = connection.channel(confirm=True)
    declare_topology(channel, s)
    return channel


@readable_errors
def declare() -> None:
    """Declare every exchange, queue and binding (idempotent)."""
    s = settings()
    _channel(s)
    where = f" in namespace {s.namespace}" if s.namespace else ""
    console.print(f"topology declared{where}")


@readable_errors
def queues() -> None:
    """Messages ready and consumers of every queue, via AMQP (no rabbitmqctl needed)."""
    s = settings()
    names = Names(s.namespace)
    channel = _channel(s)
    table = Table("queue", "ready", "consumers")
    all_queues = [names.task_queue(t) for t in JOB_TYPES]
    all_queues += [names.retry_queue(d) for d in s.retry_delays_ms]
    all_queues += [names.dead_queue, names.audit_events_queue, names.audit_dead_queue]
    for queue in all_queues:
        ready, consumers = channel.queue_depth(queue)
        table.add_row(queue, str(ready), str(consumers))
    console.print(table)


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
    with FolderBlobStore(s.blob_dir).open_for_write(key) as out, file.open("rb") as src:
        shutil.copyfileobj(src, out)
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
