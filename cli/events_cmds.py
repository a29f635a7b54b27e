"""`jobsuite events tail`: every event live, through a server-named exclusive queue bound to the
`events` fanout (the tutorial's receive_logs). The queue lives as long as the connection:
Ctrl-C closes it and the broker deletes the queue."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.text import Text

from cli.common import console, err_console, readable_errors, settings
from shared.amqp import Delivery, connect_once
from shared.errors import DecodeError
from shared.events import instance_name
from shared.messages import Event, decode_event
from shared.topology import Names, declare_topology

events_app = typer.Typer(help="Watch every job's events live.", no_args_is_help=True)

STYLES = {
    "job.submitted": "blue",
    "job.started": "cyan",
    "job.retrying": "yellow",
    "job.succeeded": "green",
    "job.failed": "red",
    "job.rejected": "red",
    "job.dead": "bold red",
    "job.replayed": "magenta",
    "job.deleted": "dim",
}


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


@events_app.command("tail")
@readable_errors
def tail(
    job_type: Annotated[str | None, typer.Option("--type", help="only jobs of this type")] = None,
    job: Annotated[str | None, typer.Option("--job", help="only this job id")] = None,
    event: Annotated[str | None, typer.Option(help="only this event, e.g. job.failed")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show events as they happen until Ctrl-C."""
    s = settings()
    connection = connect_once(s, f"jobsuite-tail:{instance_name()}")
    try:
        channel = connection.channel()
        declare_topology(channel, s)
        queue = channel.declare_private_queue()
        channel.bind(queue, Names(s.namespace).events_exchange)

        def show(delivery: Delivery) -> None:
            try:
                e = decode_event(delivery.body)
            except DecodeError as error:
                err_console.print(f"[yellow]skipped a message that is not an event: {error}[/]")
                return
            if job_type not in (None, e.type) or job not in (None, e.job_id):
                return
            if event not in (None, e.event):
                return
            if as_json:
                _print_json(json.loads(delivery.body))
            else:
                console.print(_line(e), highlight=False, soft_wrap=True)

        channel.consume(queue, show, auto_ack=True)
        err_console.print(f"listening on {queue} (Ctrl-C to stop)", highlight=False)
        with _stop_on_signals() as stopping:
            while not stopping.is_set():
                connection.pump(0.2)
    finally:
        connection.close()


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _line(e: Event) -> Text:
    """One aligned line: time, event, type, job, attempt, who, and what came of it."""
    text = Text()
    text.append(e.at.astimezone().strftime("%H:%M:%S.%f")[:-3], style="dim")
    text.append(f"  {e.event:<13} ", style=STYLES.get(e.event, ""))
    text.append(f"{e.type:<7} {e.job_id}  #{e.attempt}  ")
    text.append(f"{e.service}@{e.instance}", style="dim")
    if e.duration_ms is not None:
        text.append(f"  {e.duration_ms:.0f} ms")
    if e.outputs:
        text.append(f"  → {', '.join(e.outputs)}", style="green")
    if e.error is not None:
        text.append(f"  {e.error.kind}: {e.error.message}", style=STYLES.get(e.event, "red"))
    return text


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C (or SIGTERM) ends the loop between two I/O turns, never inside pika."""
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
