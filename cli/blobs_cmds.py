"""`jobsuite blobs prune`: delete the blobs of jobs older than BLOB_RETENTION_DAYS (or
`--days`) now, as the gateway's janitor does every hour (shared/blobs/janitor.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import console, fail, readable_errors, settings
from shared.blobs import open_blob_store
from shared.blobs.janitor import cutoff_of, prune
from shared.words import count

blobs_app = typer.Typer(help="Look after the blob store.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(blobs_app, name="blobs")


@blobs_app.command("prune")
@readable_errors
def prune_command(
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="older than this many days (BLOB_RETENTION_DAYS)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the jobs, delete nothing")
    ] = False,
) -> None:
    """Delete the inputs and outputs of jobs whose every blob is older than N days.

    The audit keeps their records; their results are then 410. One line per job, then a
    summary."""
    s = settings()
    days = days or s.blob_retention_days
    if days <= 0:
        raise fail("BLOB_RETENTION_DAYS is unset (blobs are kept forever): give --days N")
    blobs = open_blob_store(s)
    found = prune(blobs, cutoff_of(days), dry_run=dry_run)
    for job in found:
        console.print(
            f"{job.job_id}  {count(job.blobs, 'blob')}  newest {job.newest:%Y-%m-%d %H:%M}",
            highlight=False,
        )
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} the blobs of {count(len(found), 'job')} older than {count(days, 'day')}",
        highlight=False,
    )
