"""`jobsuite`: the command line for people running the suite.

Until the gateway exists, `jobsuite enqueue` puts a job straight on the broker the way the
gateway will: input into the blob store first, then the job published with confirms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from shared.amqp import Channel, connect_once
from shared.blobs import FolderBlobStore, input_key
from shared.config import Settings, settings_or_exit
from shared.errors import BrokerError
from shared.events import EventSource, instance_name
from shared.messages import JOB_TYPES, Job, decode_event, encode
from shared.topology import Names, declare_topology

TERMINAL = {"job.succeeded", "job.failed", "job.dead"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = settings_or_exit()
    try:
        return int(args.run(settings, args))
    except BrokerError as e:
        print(f"jobsuite: {e}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobsuite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("declare", help="declare every exchange and queue (idempotent)")
    p.set_defaults(run=cmd_declare)

    p = sub.add_parser("queues", help="messages ready and consumers of every queue")
    p.set_defaults(run=cmd_queues)

    p = sub.add_parser("enqueue", help="put a resize job straight on the broker")
    p.add_argument("file", type=Path, help="the image to resize")
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--fit", choices=["contain", "cover", "exact"])
    p.add_argument("--format", choices=["jpeg", "png", "webp"])
    p.add_argument("--quality", type=int)
    p.add_argument("--wait", action="store_true", help="wait for the outcome and print it")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(run=cmd_enqueue)
    return parser


def _channel(settings: Settings) -> Channel:
    connection = connect_once(settings, f"jobsuite-cli:{instance_name()}")
    channel = connection.channel(confirm=True)
    declare_topology(channel, settings)
    return channel


def cmd_declare(settings: Settings, _args: argparse.Namespace) -> int:
    _channel(settings)
    print(
        "topology declared" + (f" in namespace {settings.namespace}" if settings.namespace else "")
    )
    return 0


def cmd_queues(settings: Settings, _args: argparse.Namespace) -> int:
    names = Names(settings.namespace)
    channel = _channel(settings)
    queues = [names.task_queue(t) for t in JOB_TYPES]
    queues += [names.retry_queue(d) for d in settings.retry_delays_ms]
    queues += [names.dead_queue, names.audit_events_queue, names.audit_dead_queue]
    print(f"{'queue':40} {'ready':>8} {'consumers':>10}")
    for queue in queues:
        ready, consumers = channel.queue_depth(queue)
        print(f"{queue:40} {ready:>8} {consumers:>10}")
    return 0


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"jobsuite: no such file: {args.file}", file=sys.stderr)
        return 2
    params = {
        k: v
        for k in ("width", "height", "fit", "format", "quality")
        if (v := getattr(args, k)) is not None
    }
    names = Names(settings.namespace)
    blobs = FolderBlobStore(settings.blob_dir)
    job = Job(type="resize", params=params)
    key = input_key(job.id, "input" + args.file.suffix.lower())
    with blobs.open_for_write(key) as out, args.file.open("rb") as src:
        shutil.copyfileobj(src, out)
    job = job.model_copy(update={"inputs": [key]})

    channel = _channel(settings)
    watch = channel.declare_private_queue() if args.wait else None
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
    print(job.id)
    return _wait(channel, watch, job.id, args.timeout) if watch else 0


def _wait(channel: Channel, queue: str, job_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = channel.get(queue)
        if delivery is None:
            time.sleep(0.1)
            continue
        channel.ack(delivery)
        event = decode_event(delivery.body)
        if event.job_id == job_id and event.event in TERMINAL:
            print(json.dumps(event.model_dump(mode="json", exclude_none=True), indent=2))
            return 0 if event.event == "job.succeeded" else 1
    print(f"jobsuite: no outcome for {job_id} within {timeout:.0f} s", file=sys.stderr)
    return 1
