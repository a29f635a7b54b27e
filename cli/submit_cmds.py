"""Commands that talk to the gateway over HTTP: submit jobs, follow them, fetch results.

`GATEWAY_URL` (or `--gateway`) picks the gateway. Job ids go to stdout, one a line, so
`id=$(jobsuite submit render …)` works; progress and notes go to stderr. Anything the gateway
refuses ends the command with one readable line and a non-zero exit code.
"""

from __future__ import annotations

import email.message
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cli.common import console, err_console, fail, readable_errors
from cli.gateway_client import Gateway, expect_ok, save, wait

GatewayOpt = Annotated[
    str | None, typer.Option("--gateway", help="gateway URL [default: GATEWAY_URL]")
]
WaitOpt = Annotated[bool, typer.Option("--wait", help="wait for the outcome; exit 1 on failure")]
TimeoutOpt = Annotated[float, typer.Option(help="seconds --wait waits at most")]
KeyOpt = Annotated[
    str | None, typer.Option("--idempotency-key", help="send the same job only once")
]
ThenOpt = Annotated[
    str | None, typer.Option(help='a follow-up job as JSON: {"type": "mail", "params": {…}}')
]


def register(app: typer.Typer) -> None:
    submit = typer.Typer(help="Submit a job to the gateway.", no_args_is_help=True)
    submit.command("resize")(submit_resize)
    submit.command("render")(submit_render)
    submit.command("mail")(submit_mail)
    app.add_typer(submit, name="submit")
    app.command("status")(status)
    app.command("result")(result)


@readable_errors
def submit_resize(
    photos: Annotated[list[Path], typer.Argument(help="images: one job each")],
    width: Annotated[int | None, typer.Option()] = None,
    height: Annotated[int | None, typer.Option()] = None,
    fit: Annotated[str | None, typer.Option(help="contain, cover or exact")] = None,
    format: Annotated[str | None, typer.Option(help="jpeg, png or webp")] = None,
    quality: Annotated[int | None, typer.Option(help="1-95")] = None,
    size: Annotated[
        list[str] | None, typer.Option(help="a thumbnail set: repeat, e.g. --size 800x600")
    ] = None,
    then: ThenOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 120.0,
    idempotency_key: KeyOpt = None,
    gateway: GatewayOpt = None,
) -> None:
    """Resize images (one job per file)."""
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise fail(f"no such file: {', '.join(missing)}", 2)
    if idempotency_key and len(photos) > 1:
        raise fail("--idempotency-key takes one file at a time", 2)
    fields = {"width": width, "height": height, "fit": fit, "format": format}
    form: dict[str, Any] = {k: str(v) for k, v in {**fields, "quality": quality}.items() if v}
    if size:
        form["sizes"] = size
    if then:
        form["then"] = then
    gw = Gateway(gateway)
    ids = []
    with _progress(len(photos)) as progress:
        task = progress.add_task("uploading", total=len(photos))
        for photo in photos:
            progress.update(task, description=photo.name)
            with photo.open("rb") as f:
                response = gw.submit(
                    "/jobs/resize",
                    idempotency_key,
                    rewind=lambda: f.seek(0),
                    files={"file": (photo.name, f, "application/octet-stream")},
                    data=form,
                )
            ids.append(response.json()["id"])
            progress.advance(task)
    for job_id, photo in zip(ids, photos, strict=True):
        console.print(
            job_id if len(photos) == 1 else f"{job_id}  {photo}", highlight=False, soft_wrap=True
        )
    if wait:
        _wait_and_report(gw, ids, timeout)


@readable_errors
def submit_render(
    template: Annotated[str, typer.Option(help="document, invoice or report")],
    data: Annotated[
        Path | None, typer.Option(help="the template's data: a JSON file, - for stdin")
    ] = None,
    page_size: Annotated[str | None, typer.Option(help="A4 or Letter")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    author: Annotated[str | None, typer.Option()] = None,
    then: ThenOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 120.0,
    idempotency_key: KeyOpt = None,
    gateway: GatewayOpt = None,
) -> None:
    """Render a PDF from a template and its data."""
    body: dict[str, Any] = {"template": template, "data": _json_file(data) if data else {}}
    body |= {
        k: v for k, v in {"page_size": page_size, "title": title, "author": author}.items() if v
    }
    if then:
        body["then"] = _json_text(then, "--then")
    _submit_json(Gateway(gateway), "render", body, idempotency_key, wait, timeout)


@readable_errors
def submit_mail(
    to: Annotated[list[str], typer.Option(help="a recipient: repeat for several")],
    subject: Annotated[str, typer.Option()],
    text: Annotated[str | None, typer.Option(help="the plain-text body")] = None,
    text_file: Annotated[Path | None, typer.Option(help="the plain-text body from a file")] = None,
    html_file: Annotated[Path | None, typer.Option(help="the HTML body from a file")] = None,
    cc: Annotated[list[str] | None, typer.Option()] = None,
    bcc: Annotated[list[str] | None, typer.Option()] = None,
    attach: Annotated[
        list[str] | None, typer.Option(help="attach the outputs of this job id: repeatable")
    ] = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 120.0,
    idempotency_key: KeyOpt = None,
    gateway: GatewayOpt = None,
) -> None:
    """Send an e-mail, with the outputs of earlier jobs attached."""
    if text is not None and text_file is not None:
        raise fail("give --text or --text-file, not both", 2)
    body: dict[str, Any] = {"to": to, "cc": cc or [], "bcc": bcc or [], "subject": subject}
    body["attachments"] = attach or []
    if text_file is not None:
        text = _read_text(text_file)
    body |= {k: v for k, v in {"text": text}.items() if v is not None}
    if html_file is not None:
        body["html"] = _read_text(html_file)
    _submit_json(Gateway(gateway), "mail", body, idempotency_key, wait, timeout)


@readable_errors
def status(
    job_id: Annotated[str, typer.Argument(help="the id a submission printed")],
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
    gateway: GatewayOpt = None,
) -> None:
    """Where a job stands: status, attempts, timestamps, error, outputs."""
    record = Gateway(gateway).call("GET", f"/jobs/{job_id}", 200).json()
    if as_json:
        console.print_json(json.dumps(record))
        return
    table = Table(show_header=False, box=None)
    for key in ("id", "type", "status", "attempts", "submitted_at", "finished_at"):
        if record.get(key) is not None:
            table.add_row(key, str(record[key]))
    if record.get("error"):
        table.add_row("error", f"{record['error']['kind']}: {record['error']['message']}")
    for output in record.get("outputs", []):
        table.add_row("output", output)
    console.print(table)


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
    gw = Gateway(gateway)
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


# --- helpers ------------------------------------------------------------------------------


def _submit_json(
    gw: Gateway, job_type: str, body: dict[str, Any], key: str | None, wait: bool, timeout: float
) -> None:
    response = gw.submit(f"/jobs/{job_type}", key, json=body)
    job_id = response.json()["id"]
    console.print(job_id, highlight=False, soft_wrap=True)
    if wait:
        _wait_and_report(gw, [job_id], timeout)


def _wait_and_report(gw: Gateway, ids: list[str], timeout: float) -> None:
    records = wait(gw, ids, timeout)
    failed = 0
    for job_id in ids:
        record = records[job_id]
        if record["status"] == "succeeded":
            took = f" in {record['duration_ms']:.0f} ms" if record.get("duration_ms") else ""
            outputs = ", ".join(record.get("outputs", [])) or "no outputs"
            console.print(f"{job_id} succeeded{took}: {outputs}", highlight=False, soft_wrap=True)
        else:
            failed += 1
            error = record.get("error") or {}
            why = f"{error.get('kind', '?')}: {error.get('message', 'no reason given')}"
            err_console.print(
                f"{job_id} {record['status']}: {why}", highlight=False, soft_wrap=True
            )
    if failed:
        raise typer.Exit(1)


@contextmanager
def _progress(total: int) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True, disable=total < 2) as progress:
        yield progress


def _file_name(content_disposition: str) -> str:
    message = email.message.Message()
    message["content-disposition"] = content_disposition
    return Path(message.get_filename() or "result").name


def _read_text(path: Path) -> str:
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"cannot read {path}: {e}", 2) from None


def _json_file(path: Path) -> Any:
    return _json_text(_read_text(path), str(path))


def _json_text(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(f"{what} is not valid JSON: {e}", 2) from None
