"""`jobsuite audit verify|rebuild` (the log on disk) and `jobsuite jobs` (the audit read API).

verify and rebuild work on the audit service's files, so they use its log code; it is
imported inside the commands so that `shared` does not load a service at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from cli.common import console, err_console, fail, readable_errors, settings
from cli.tables import Row, error_line, print_listing, short_duration, short_time
from shared.config import Settings
from shared.errors import AuditUnavailable
from shared.keyfile import auth_header
from shared.messages import JobStatus
from shared.state import Checkpoint, Signer
from shared.words import count

audit_app = typer.Typer(
    help="Check the audit log and rebuild its read model.", no_args_is_help=True
)

STATUS_STYLES = {
    "submitted": "blue",
    "started": "cyan",
    "retrying": "yellow",
    "succeeded": "green",
    "failed": "red",
    "rejected": "magenta",
    "dead": "bold red",
}

JOB_HEADERS = ("job", "type", "status", "try", "submitted", "took")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command("jobs")(jobs)


@audit_app.command("verify")
@readable_errors
def verify(
    path: Annotated[
        Path | None,
        typer.Argument(help="the audit folder, its log/ folder or one segment (default AUDIT_DIR)"),
    ] = None,
) -> None:
    """Check the hash chain against the checkpoints; exit 1 with one line per finding.

    The whole chain, compared with the checkpoints in the state store (signatures too when
    AUDIT_SIGNING_KEY is set)."""
    from services.audit.checkpoint_check import compare, wanted_seqs
    from services.audit.model import recorded_head
    from services.audit.verify import verify as verify_log

    s = settings()
    target = path or s.audit_dir
    if not target.exists():
        # Say where the folder was looked for and why, so a differing setting is seen at once.
        why = (
            ""
            if path
            else f" (AUDIT_DIR; a relative one is under JOBSUITE_HOME, {s.jobsuite_home})"
        )
        raise fail(f"no audit log at {target}{why}", 2)
    head = None
    if target.is_dir():
        head = recorded_head(s, target)  # read before the log: the log is written first
    history = _checkpoints(s) if target.is_dir() else []
    report = verify_log(target, recorded_head=head, wanted=wanted_seqs(history))
    for note in report.notes:
        err_console.print(f"[dim]note: {note}[/]", highlight=False)
    problems = [f"BROKEN at {report.problem}"] if report.problem else []
    if target.is_dir():
        found = compare(report, history, _signer(s))
        problems += found.problems
        for note in found.notes:
            err_console.print(f"[dim]note: {note}[/]", highlight=False)
        for warning in found.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    else:
        err_console.print("[dim]note: one segment: not compared with the checkpoints[/]")
    for problem in problems:
        err_console.print(f"[bold red]audit log {problem}[/]", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    span = f"seq {report.first_seq}..{report.head_seq}" if report.records else "empty"
    console.print(
        f"[green]audit log intact[/]: {count(report.records, 'record')} in "
        f"{count(report.segments, 'segment')}, {span}, head {report.head_hash[:16]}",
        highlight=False,
    )


def _checkpoints(s: Settings) -> list[Checkpoint]:
    """The log's checkpoints, found where the service keeps them; none without the SQLite
    file (verify does not create a state store)."""
    from shared.state import audit_log_id, checkpoints_kept, open_checkpoints

    if not checkpoints_kept(s):
        return []
    store = open_checkpoints(s)
    try:
        return store.history(audit_log_id(s))
    finally:
        store.close()


def _signer(s: Settings) -> Signer | None:
    return Signer(s.audit_signing_key) if s.audit_signing_key else None


@audit_app.command("rebuild")
@readable_errors
def rebuild() -> None:
    """Rebuild the read model from the log (stop the audit service first)."""
    from services.audit.lock import DirLock
    from services.audit.recorder import rebuild as rebuild_model
    from services.audit.verify import verify as verify_log

    s = settings()
    with DirLock(s.audit_dir):
        report = verify_log(s.audit_dir)
        if not report.ok:
            raise fail(f"not rebuilding from a broken log: {report.problem}")
        rebuilt = rebuild_model(s)
    console.print(f"read model rebuilt from {count(rebuilt, 'record')}", highlight=False)


@readable_errors
def jobs(
    status: Annotated[JobStatus | None, typer.Option(help="only jobs in this state")] = None,
    job_type: Annotated[str | None, typer.Option("--type", help="resize, render or mail")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: Annotated[int | None, typer.Option(help="from a previous page's hint")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """The jobs the audit service knows, newest first."""
    s = settings()
    query = {"status": status, "type": job_type, "limit": limit, "cursor": cursor}
    page = audit_get(s, "/jobs", {k: v for k, v in query.items() if v is not None})
    if as_json:
        for job in page["jobs"]:
            print(json.dumps(job, separators=(",", ":")))
        return
    rows = [
        Row(
            [
                job["id"],
                job["type"],
                Text(job["status"], style=STATUS_STYLES.get(job["status"], "")),
                str(job["attempts"]),
                short_time(job.get("submitted_at")),
                short_duration(job.get("duration_ms")),
            ],
            note=error_line(job.get("error")),
        )
        for job in page["jobs"]
    ]
    # At most 80 columns wide: the error goes under its job, not into a column.
    print_listing(console, JOB_HEADERS, rows, right={3, 5})
    if page.get("next_cursor"):
        err_console.print(f"[dim]more: --cursor {page['next_cursor']}[/]", highlight=False)


def audit_get(s: Settings, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET from the audit read API: the JSON body, or None for a 404."""
    url = s.audit_url.rstrip("/") + path
    try:
        response = httpx.get(url, params=params, timeout=10, headers=auth_header(s))
    except httpx.HTTPError as e:
        raise AuditUnavailable(f"cannot reach the audit service at {s.audit_url}: {e}") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise AuditUnavailable(
            f"the audit service answered {response.status_code}: {response.text[:300]}"
        )
    return response.json()
