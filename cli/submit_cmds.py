"""Commands that talk to the gateway over HTTP: submit jobs (`cli/job_commands.py`), follow
them, fetch results, delete their blobs.

`GATEWAY_URL` (or `--gateway`) picks the gateway. Job ids go to stdout, one a line, so
`id=$(jobsuite submit render …)` works; progress and notes go to stderr. Anything the gateway
refuses ends the command with one readable line and a non-zero exit code.
"""

from __future__ import annotations

import email.message
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import console, readable_errors
from cli.gateway_client import TERMINAL, GatewayClient, expect_ok, save
from cli.job_commands import GatewayOpt, submit_command
from cli.pipeline import tree
from shared.jobtypes import JOB_TYPES


def register(app: typer.Typer) -> None:
    submit = typer.Typer(help="Submit a job to the gateway.", no_args_is_help=True)
    for spec in JOB_TYPES:
        submit.command(spec.name)(submit_command(spec))
    app.add_typer(submit, name="submit")
    app.command("status")(status)
    app.command("result")(result)
    app.command("delete")(delete)


@readable_errors
def status(
    job_id: Annotated[str, typer.Argument(help="the id a submission printed")],
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
    gateway: GatewayOpt = None,
) -> None:
    """Where a job stands, and the pipeline it is part of.

    Status, attempts, timestamps, error, outputs, and the job before it and its follow-ups."""
    gw = GatewayClient(gateway)
    record = gw.call("GET", f"/jobs/{job_id}", 200).json()
    steps = tree(gw, record)
    if as_json:
        pipeline = [{k: step.get(k) for k in ("id", "type", "status")} for step in steps]
        console.print_json(json.dumps({**record, "pipeline": pipeline}))
        return
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # a long output path folds, never ends in "…"
    for key in ("id", "type", "status", "attempts", "submitted_at", "finished_at", "parent_id"):
        if record.get(key) is not None:
            table.add_row(key.replace("_id", ""), str(record[key]))
    if record.get("error"):
        table.add_row("error", f"{record['error']['kind']}: {record['error']['message']}")
    for output in record.get("outputs", []):
        table.add_row("output", output)
    console.print(table)
    if len(steps) > 1:
        _print_pipeline(steps, job_id)


def _print_pipeline(steps: list[dict[str, Any]], job_id: str) -> None:
    console.print("pipeline, first job first (* this one):", highlight=False)
    table = Table(show_header=False, box=None, pad_edge=False)
    for _ in range(5):
        table.add_column(no_wrap=True)
    for n, step in enumerate(steps, start=1):
        mark = "*" if step["id"] == job_id else " "
        table.add_row(mark, f"{n}.", step.get("type", "?"), step.get("status", "?"), step["id"])
    console.print(table)
    if steps[-1].get("status") not in TERMINAL:
        console.print("(a job's follow-up shows once the job has succeeded)", highlight=False)


@readable_errors
def result(
    job_id: Annotated[str, typer.Argument(help="the id of a finished job")],
    output: Annotated[
        str,
        typer.Option("-o", "--output", help="a file, or a folder (ending in /) for several"),
    ] = ".",
    gateway: GatewayOpt = None,
) -> None:
    """Download a finished job's output(s)."""
    gw = GatewayClient(gateway)
    # Kept as text: a Path would drop the trailing "/" that says "a folder".
    into_folder = output.endswith(("/", "\\")) or Path(output).is_dir()
    folder = Path(output)
    with gw.reaching(), gw.http.stream("GET", f"/jobs/{job_id}/result") as response:
        single = expect_ok(response).headers.get("content-disposition")
        if single:  # the one output itself
            target = folder / _file_name(single) if into_folder else folder
            save(response, target)
            console.print(str(target), highlight=False, soft_wrap=True)
            return
        listing = json.loads(response.read())
    folder.mkdir(parents=True, exist_ok=True)
    for item in listing["outputs"]:
        target = folder / Path(item["name"]).name
        gw.download(item["url"], target)
        console.print(str(target), highlight=False, soft_wrap=True)


@readable_errors
def delete(
    job_id: Annotated[str, typer.Argument(help="the id of a finished job")],
    gateway: GatewayOpt = None,
) -> None:
    """Delete a finished job's inputs and outputs (the audit keeps its record).

    A follow-up is a job of its own: delete it by its own id."""
    GatewayClient(gateway).call("DELETE", f"/jobs/{job_id}", 204)
    console.print(f"deleted the blobs of job {job_id}", highlight=False, soft_wrap=True)


# --- helpers ------------------------------------------------------------------------------


def _file_name(content_disposition: str) -> str:
    message = email.message.Message()
    message["content-disposition"] = content_disposition
    return Path(message.get_filename() or "result").name
