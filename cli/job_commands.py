"""`jobsuite submit <type>`, one command per declared job type (shared/jobtypes), built from
its CLI options: a job type that takes an upload gets its files as arguments (one job each)
and sends a multipart form; any other sends a JSON body. Every command also takes `--then`
(a follow-up chain: a JSON file or JSON text), `--wait` (follows the chain to its last job),
`--timeout`, `--idempotency-key` and `--gateway`.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli.common import console, err_console, fail, readable_errors
from cli.gateway_client import GatewayClient
from cli.pipeline import Step, chain, follow
from shared.jobtypes import JobTypeSpec
from shared.jobtypes.spec import CliOption

GatewayOpt = Annotated[
    str | None, typer.Option("--gateway", help="gateway URL", show_default="GATEWAY_URL")
]
_COMMON = [
    (
        "then",
        Annotated[
            str | None,
            typer.Option(
                help="follow-up jobs, each given the outputs of the one before: a JSON file"
                ' (- for stdin) or JSON text, {"type": …, "params": {…}, "then": {…}}',
                show_default=False,
            ),
        ],
        None,
    ),
    (
        "wait",
        Annotated[
            bool,
            typer.Option(
                "--wait", help="wait for every job's outcome, follow-ups too; exit 1 on a failure"
            ),
        ],
        False,
    ),
    (
        "timeout",
        Annotated[float, typer.Option(help="seconds --wait waits at most, for all the jobs")],
        120.0,
    ),
    (
        "idempotency_key",
        Annotated[
            str | None, typer.Option("--idempotency-key", help="send the same job only once")
        ],
        None,
    ),
    ("gateway", GatewayOpt, None),
]


def submit_command(spec: JobTypeSpec[Any, Any]) -> Callable[..., None]:
    """The command function for `spec`, with the signature Typer reads its options from."""

    def command(**given: Any) -> None:
        request = _request_fields(spec, given)
        then_text = read_then(given["then"])
        then = _json_text(then_text, "--then") if then_text is not None else None
        if then is not None and not isinstance(then, dict):
            raise fail('--then must be one JSON object: {"type": …, "params": {…}}', 2)
        gw = GatewayClient(given["gateway"])
        if spec.upload is not None:
            # The text as given: the gateway reads it strictly (a key given twice is a 422).
            _submit_uploads(spec, gw, given, request, then_text, then)
        else:
            if then is not None:
                request["then"] = then
            _submit_json(spec, gw, given, request, then)

    command.__name__ = f"submit_{spec.name}"
    command.__doc__ = spec.summary
    command.__signature__ = _signature(spec)  # type: ignore[attr-defined]
    return readable_errors(command)


def _signature(spec: JobTypeSpec[Any, Any]) -> inspect.Signature:
    params: list[inspect.Parameter] = []
    if spec.upload is not None:
        files = Annotated[list[Path], typer.Argument(help="files to upload: one job each")]
        params.append(_param("files", files))
    for option in spec.cli:
        params.append(_option_param(option))
    params += [_param(name, annotation, default) for name, annotation, default in _COMMON]
    # Typer wants the required options first, as Python wants them for a function.
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    return inspect.Signature(params)


def _option_param(option: CliOption) -> inspect.Parameter:
    value_type: Any = Path if option.reads != "value" else option.type
    if option.many:
        value_type = list[value_type]  # type: ignore[valid-type]
    info = typer.Option(option.flag, help=option.help)
    if option.required:
        return _param(_name(option), Annotated[value_type, info])
    return _param(_name(option), Annotated[value_type | None, info], None)


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _name(option: CliOption) -> str:
    return option.flag.removeprefix("--").replace("-", "_")


def _request_fields(spec: JobTypeSpec[Any, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The request's fields from the options given; two options that fill the same field
    may not both be given."""
    fields: dict[str, Any] = {}
    filled_by: dict[str, str] = {}
    for option in spec.cli:
        value = given[_name(option)]
        if value is None or value == []:
            continue
        if option.field in filled_by:
            raise fail(f"give {filled_by[option.field]} or {option.flag}, not both", 2)
        filled_by[option.field] = option.flag
        fields[option.field] = _read(option, value)
    return fields


def _read(option: CliOption, value: Any) -> Any:
    if option.reads == "json_file":
        return _json_text(_read_text(value), str(value))
    if option.reads == "text_file":
        return _read_text(value)
    return value


def read_then(value: str | None) -> str | None:
    """`--then` as JSON text: given inline (it starts with `{`), or read from a file."""
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        return value
    return _read_text(Path(value))


def _submit_json(
    spec: JobTypeSpec[Any, Any],
    gw: GatewayClient,
    given: dict[str, Any],
    body: dict[str, Any],
    then: dict[str, Any] | None,
) -> None:
    response = gw.submit(f"/jobs/{spec.name}", given["idempotency_key"], json=body)
    job_id = response.json()["id"]
    console.print(job_id, highlight=False, soft_wrap=True)
    if given["wait"]:
        wait_and_report(gw, [chain(job_id, spec.name, then)], given["timeout"])


def _submit_uploads(
    spec: JobTypeSpec[Any, Any],
    gw: GatewayClient,
    given: dict[str, Any],
    fields: dict[str, Any],
    then_text: str | None,
    then: dict[str, Any] | None,
) -> None:
    files: list[Path] = given["files"]
    key = given["idempotency_key"]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise fail(f"no such file: {', '.join(missing)}", 2)
    if key and len(files) > 1:
        raise fail("--idempotency-key takes one file at a time", 2)
    form = {name: _form_text(value) for name, value in fields.items()}
    if then_text is not None:
        form["then"] = then_text
    ids = []
    with _progress(len(files)) as progress:
        task = progress.add_task("uploading", total=len(files))
        for path in files:
            progress.update(task, description=path.name)
            with path.open("rb") as f:
                response = gw.submit(
                    f"/jobs/{spec.name}",
                    key,
                    rewind=lambda: f.seek(0),
                    files={"file": (path.name, f, "application/octet-stream")},
                    data=form,
                )
            ids.append(response.json()["id"])
            progress.advance(task)
    for job_id, path in zip(ids, files, strict=True):
        console.print(
            job_id if len(files) == 1 else f"{job_id}  {path}", highlight=False, soft_wrap=True
        )
    if given["wait"]:
        wait_and_report(gw, [chain(job_id, spec.name, then) for job_id in ids], given["timeout"])


def _form_text(value: Any) -> str | list[str]:
    return [str(v) for v in value] if isinstance(value, list) else str(value)


def wait_and_report(gw: GatewayClient, chains: list[list[Step]], timeout: float) -> None:
    """Follow each pipeline to its last job and print every job's outcome, a line each (a
    follow-up that never came: `not run`); exit 1 when any job did not succeed."""
    records = follow(gw, chains, timeout)
    failed = 0
    for steps in chains:
        for step in steps:
            record = records.get(step.id)
            line = _outcome(step, record, piped=len(steps) > 1)
            if record is not None and record["status"] == "succeeded":
                console.print(line, highlight=False, soft_wrap=True)
            else:
                failed += 1
                err_console.print(line, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _outcome(step: Step, record: dict[str, Any] | None, *, piped: bool) -> str:
    """`<id> succeeded in 80 ms: <outputs>`; in a pipeline, each job's type after its id."""
    job = f"{step.id} {step.type}" if piped else step.id
    if record is None:
        return f"{job} not run: the job before it did not succeed"
    if record["status"] == "succeeded":
        took = f" in {record['duration_ms']:.0f} ms" if record.get("duration_ms") else ""
        outputs = ", ".join(record.get("outputs", [])) or "no outputs"
        return f"{job} succeeded{took}: {outputs}"
    error = record.get("error") or {}
    why = f"{error.get('kind', '?')}: {error.get('message', 'no reason given')}"
    return f"{job} {record['status']}: {why}"


@contextmanager
def _progress(total: int) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True, disable=total < 2) as progress:
        yield progress


def _read_text(path: Path) -> str:
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"cannot read {path}: {e}", 2) from None


def _json_text(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(f"{what} is not valid JSON: {e}", 2) from None
