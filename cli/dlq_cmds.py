"""`jobsuite dlq`: inspect the dead letters in `jobs.dead`, replay them, or drop them
(services/audit/dlq_box.py holds them, replays and drops: the console does the same)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.audit_cmds import audit_get
from cli.common import console, err_console, fail, readable_errors, settings
from cli.tables import Row, error_line, print_listing, short_time
from shared.config import Settings
from shared.errors import AuditUnavailable
from shared.events import EventSource, instance_name
from shared.words import count

if TYPE_CHECKING:
    from services.audit.dlq_box import Box, Held

dlq_app = typer.Typer(help="Inspect, replay or drop dead letters.", no_args_is_help=True)
TypeOption = Annotated[str | None, typer.Option("--type", help="only jobs of this type")]


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")


@contextmanager
def _dead_letters(s: Settings) -> Iterator[Box]:
    from services.audit.dlq_box import dead_letters

    with dead_letters(s, f"jobsuite-dlq:{instance_name()}") as box:
        yield box


def _pick(held: list[Held], ids: list[str]) -> list[Held]:
    """The dead letters of these job ids, in the order given; an unknown id ends the command."""
    by_id = {h.dead.job_id: h for h in held}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise fail(f"no dead letter for {', '.join(missing)} (see `jobsuite dlq list`)")
    return [by_id[i] for i in dict.fromkeys(ids)]


def _summary(h: Held, errors: dict[str, Any]) -> dict[str, Any]:
    from services.audit.dlq_box import summary

    return summary(h, errors)


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
            job = box.replay(h, source)
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
