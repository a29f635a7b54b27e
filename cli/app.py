"""The `jobsuite` console script: one Typer app, each command group registered from its module."""

from __future__ import annotations

import typer

from cli import (
    audit_cmds,
    bench_cmds,
    blobs_cmds,
    broker_cmds,
    dlq_cmds,
    events_cmds,
    help_format,  # noqa: F401  (imported for its effect: flags show no type)
    keys_cmds,
    submit_cmds,
    users_cmds,
)

app = typer.Typer(
    name="jobsuite",
    help="Submit, watch and audit jobsuite jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
    broker_cmds,
    users_cmds,
    events_cmds,
    audit_cmds,
    dlq_cmds,
    submit_cmds,
    bench_cmds,
    keys_cmds,
    blobs_cmds,
):
    module.register(app)


def main() -> None:
    app()
