"""`jobsuite dlq`: inspect the dead letters in `jobs.dead`, replay them, or drop them.

The dead letters are taken with basic.get and held unacked while the command runs; whatever
the command does not replay or drop goes back to the queue when its connection closes.
Replay publishes the job (attempt 1) with a confirm, then a `job.replayed` event, and only
then acks the dead letter: a failure half-way leaves the dead letter where it was.
The audit service's own copy (in `audit.dead`) is separate and unaffected.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.audit_cmds import audit_get
from cli.common import console, err_console, fail, readable_errors, settings
from cli.tables import Row, error_line, print_listing, short_time
from shared.amqp import Channel, Delivery, connect_once
from shared.config import Settings
from shared.errors import AuditUnavailable, BrokerError
from shared.events import EventSource, instance_name
from shared.messages import encode, utc_now
from shared.topology import Names, ensure_topology
from shared.words import count

if TYPE_CHECKING:
    from services.audit.deadletters import DeadLetter

dlq_app = typer.Typer(help="Inspect, replay or drop dead letters.", no_args_is_help=True)

RETURN_TIMEOUT_S = 5.0
TypeOption = Annotated[str | None, typer.Option("--type", help="only jobs of this type")]


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")


@dataclass(frozen=True)
class Held:
    delivery: Delivery
    dead: DeadLetter


class Box:
    """The dead letters taken off `jobs.dead` for one command, held unacked."""

    def __init__(self, channel: Channel, held: list[Held]) -> None:
        self.channel = channel
        self.held = held
        self.settled = 0

    def drop(self, h: Held) -> None:
        """Ack: the dead letter leaves the queue for good."""
        self.channel.ack(h.delivery)
        self.settled += 1


@contextmanager
def _dead_letters(s: Settings) -> Iterator[Box]:
    """Every dead letter now in `jobs.dead`, held unacked until the block ends; what was not
    dropped then goes back to the queue."""
    from services.audit.deadletters import read_dead_letter

    queue = Names(s.namespace).dead_queue
    connection = connect_once(s, f"jobsuite-dlq:{instance_name()}")
    box: Box | None = None
    try:
        ensure_topology(connection, s)
        box = Box(connection.channel(confirm=True), [])
        while (d := box.channel.get(queue)) is not None:
            box.held.append(Held(d, read_dead_letter(d.body, d.headers, d.message_id, None)))
        yield box
    finally:
        connection.close()
        if box is not None:
            with contextlib.suppress(BrokerError):
                _wait_until_returned(s, queue, len(box.held) - box.settled)


def _wait_until_returned(s: Settings, queue: str, count: int) -> None:
    """A quorum queue takes back released messages a moment after the connection closed:
    wait for that, so the next command sees every dead letter."""
    if count <= 0:
        return
    connection = connect_once(s, f"jobsuite-dlq:{instance_name()}")
    try:
        channel = connection.channel()
        deadline = time.monotonic() + RETURN_TIMEOUT_S
        while channel.queue_depth(queue)[0] < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        connection.close()


def _pick(held: list[Held], ids: list[str]) -> list[Held]:
    """The dead letters of these job ids, in the order given; an unknown id ends the command."""
    by_id = {h.dead.job_id: h for h in held}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise fail(f"no dead letter for {', '.join(missing)} (see `jobsuite dlq list`)")
    return [by_id[i] for i in dict.fromkeys(ids)]


def _summary(h: Held, errors: dict[str, Any]) -> dict[str, Any]:
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


def _where_and_why(row: dict[str, Any]) -> str:
    """`from jobs.resize; invalid_input: …`: the line under a dead letter."""
    where = f"from {row['queue']}" if row["queue"] else ""
    return "; ".join(part for part in (where, error_line(row["error"])) if part)


def _audit_errors(s: Settings, job_ids: list[str]) -> dict[str, Any]:
    """The failure each job died of, from the audit read model, when it is reachable."""
    errors: dict[str, Any] = {}
    for job_id in job_ids:
        try:
            record = audit_get(s, f"/jobs/{job_id}")
        except AuditUnavailable as e:
            err_console.print(f"[dim]errors not shown: {e}[/]", highlight=False)
            break
        if record and record.get("error"):
            errors[job_id] = record["error"]
    return errors


@dlq_app.command("list")
@readable_errors
def list_(
    job_type: TypeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """The dead letters: reason, attempts, original queue, error."""
    s = settings()
    with _dead_letters(s) as box:
        chosen = [h for h in box.held if job_type in (None, h.dead.type)]
        errors = _audit_errors(s, [h.dead.job_id for h in chosen])
        rows = [_summary(h, errors) for h in chosen]
    if as_json:
        for row in rows:
            print(json.dumps(row, separators=(",", ":")))
        return
    listed = [
        Row(
            [
                r["job_id"],
                r["type"],
                r["reason"] + (f" x{r['deaths']}" if r["deaths"] > 1 else ""),
                str(r["attempt"] or "?"),
                short_time(r["died_at"]),
            ],
            note=_where_and_why(r),
        )
        for r in rows
    ]
    # At most 80 columns wide: the queue and the error go under the job, not into columns.
    print_listing(console, ("job", "type", "reason", "try", "died"), listed, right={3})
    err_console.print(count(len(rows), "dead letter"), highlight=False)


@dlq_app.command("show")
@readable_errors
def show(job_id: Annotated[str, typer.Argument(help="the job id")]) -> None:
    """One dead letter in full: the job, the broker's x-death record, the audit's error."""
    s = settings()
    with _dead_letters(s) as box:
        (h,) = _pick(box.held, [job_id])
        summary = _summary(h, _audit_errors(s, [job_id]))
        body: Any = h.dead.job.model_dump(mode="json") if h.dead.job else None
        if body is None:
            body = h.delivery.body.decode("utf-8", "replace")
        death = h.delivery.headers.get("x-death")
    console.print_json(
        json.dumps({**summary, "job": body, "x-death": death}, default=str), highlight=False
    )


@dlq_app.command("replay")
@readable_errors
def replay(
    job_ids: Annotated[list[str] | None, typer.Argument(help="the job ids to replay")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    job_type: TypeOption = None,
) -> None:
    """Put dead jobs back on their queue with a fresh attempt count."""
    if bool(job_ids) == all_:
        raise fail("give job ids or --all (with --type to narrow it)", 2)
    s = settings()
    names = Names(s.namespace)
    source = EventSource("cli", instance_name())
    unreplayable = 0
    with _dead_letters(s) as box:
        chosen = _pick(box.held, job_ids) if job_ids else box.held
        for h in chosen:
            if job_type not in (None, h.dead.type):
                continue
            if h.dead.job is None:
                err_console.print(
                    f"[red]cannot replay {h.dead.job_id}[/]: {h.dead.body_error} "
                    f"(drop it with `jobsuite dlq purge {h.dead.job_id}`)",
                    highlight=False,
                )
                unreplayable += 1
                continue
            # A new submitted_at marks the job's new life for the audit's lifecycle order.
            job = h.dead.job.model_copy(update={"attempt": 1, "submitted_at": utc_now()})
            box.channel.publish(
                names.jobs_exchange, job.type, encode(job), message_id=job.id, message_type=job.type
            )
            event = source.about("job.replayed", job, at=job.submitted_at)
            box.channel.publish(
                names.events_exchange,
                "",
                encode(event),
                message_id=event.event_id,
                message_type=event.event,
            )
            box.drop(h)
            console.print(f"replayed {job.id} ({job.type})", highlight=False)
    if unreplayable:
        raise typer.Exit(1)


@dlq_app.command("purge")
@readable_errors
def purge(
    job_ids: Annotated[list[str] | None, typer.Argument(help="only these job ids")] = None,
    job_type: TypeOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Drop dead letters for good (all of them, of a type, or the ones named)."""
    s = settings()
    with _dead_letters(s) as box:
        chosen = _pick(box.held, job_ids) if job_ids else box.held
        chosen = [h for h in chosen if job_type in (None, h.dead.type)]
        if not chosen:
            console.print("no dead letters to drop")
            return
        if not yes and not typer.confirm(f"Drop {count(len(chosen), 'dead letter')} for good?"):
            raise typer.Exit(1)
        for h in chosen:
            box.drop(h)
    console.print(f"dropped {count(len(chosen), 'dead letter')}", highlight=False)
