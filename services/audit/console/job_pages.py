"""The console's pages about jobs: the list (filters, id search) and one job (its facts,
pipeline tree, outputs and timeline). Server-rendered from the read model, every value
escaped; links relative to the console's root, so it works behind a path prefix. The one
script (static/console.js) adds live updates; without it, everything works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, get_args
from urllib.parse import quote, urlencode

from services.audit.console.layout import document, duration, status_badge, when
from services.audit.console.outputs import OutputFile
from shared.messages import JobRecord, JobStatus, RecordedEvent
from shared.words import count, human_size

STATUSES: tuple[str, ...] = get_args(JobStatus)  # the read model's, in lifecycle order


@dataclass(frozen=True)
class JobFilters:
    job_type: str = ""
    status: str = ""
    client: str = ""
    since: str = ""
    id: str = ""

    def query(self) -> str:
        given = {k: v for k, v in self.__dict__.items() if v}
        return urlencode({("type" if k == "job_type" else k): v for k, v in given.items()})


# --- jobs -------------------------------------------------------------------------------------


def jobs_page(
    jobs: Sequence[JobRecord],
    filters: JobFilters,
    *,
    job_types: Sequence[str],
    clients: Sequence[str],
    stats: dict[str, Any],
    next_cursor: int | None,
    error: str = "",
) -> str:
    rows = "\n".join(_job_row(j, "") for j in jobs) or (
        '<tr><td colspan="8" class="muted">No jobs match.</td></tr>'
    )
    more = (
        f'<p><a href="?{filters.query()}&amp;cursor={next_cursor}">Older jobs →</a></p>'
        if next_cursor
        else ""
    )
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    by_status = stats.get("by_status", {})
    totals = ", ".join(f"{n} {escape(s)}" for s, n in sorted(by_status.items())) or "no jobs yet"
    body = f"""<h1>Jobs</h1>
<p id="totals" class="muted" aria-live="polite">{count(stats.get("jobs", 0), "job")}: {totals}</p>
<form class="filters" method="get" action="./" role="search">
<label>Job id <input name="id" value="{escape(filters.id)}" size="38"
 placeholder="an id, or its first characters"></label>
{_select("type", "Type", job_types, filters.job_type)}
{_select("status", "Status", STATUSES, filters.status)}
{_select("client", "Client", clients, filters.client)}
<label>Since <input name="since" type="datetime-local" step="1" value="{escape(filters.since)}">
</label>
<button type="submit">Show</button> <a href="./">Clear</a>
</form>
{problem}
<div data-live="jobs">
<table id="jobs">
<caption class="visually-hidden">Jobs, newest first</caption>
<thead><tr><th scope="col">Job</th><th scope="col">Type</th><th scope="col">Status</th>
<th scope="col">Client</th><th scope="col">Submitted</th><th scope="col">Duration</th>
<th scope="col">Attempts</th><th scope="col">Error</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
{more}
</div>
"""
    return document("Jobs", "jobs", body, "")


def _select(name: str, label: str, options: Sequence[str], chosen: str) -> str:
    items = "".join(
        f'<option value="{escape(o)}"{" selected" if o == chosen else ""}>{escape(o)}</option>'
        for o in options
    )
    choices = f'<option value="">any</option>{items}'
    return f'<label>{label} <select name="{name}">{choices}</select></label>'


def _job_row(j: JobRecord, root: str) -> str:
    error = f"{j.error.kind}" if j.error else (j.dead_reason or "")
    return (
        f'<tr data-id="{escape(j.id)}"><td><a class="id" href="{root}console/jobs/{quote(j.id)}">'
        f"{escape(j.id)}</a></td><td>{escape(j.type)}</td><td>{status_badge(j.status)}</td>"
        f"<td>{escape(j.client or '')}</td><td>{when(j.submitted_at)}</td>"
        f'<td class="number">{duration(j.duration_ms)}</td>'
        f'<td class="number">{j.attempts}</td><td>{escape(error)}</td></tr>'
    )


# --- one job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineNode:
    job: JobRecord
    follow_ups: list[PipelineNode]


def job_page(
    job: JobRecord, pipeline: PipelineNode | None, files: Sequence[OutputFile] | None = None
) -> str:
    """`files`: the outputs found in the blob store (None: no store, or no manifest)."""
    root = "../../"
    trace = next((e.trace_id for e in job.events if e.trace_id), None)
    facts = [
        ("Type", escape(job.type)),
        ("Status", status_badge(job.status)),
        ("Client", escape(job.client or "")),
        ("Attempts", str(job.attempts)),
        ("Replays", str(job.replays) if job.replays else ""),
        ("Submitted", when(job.submitted_at)),
        ("Started", when(job.started_at)),
        ("Finished", when(job.finished_at)),
        ("Duration", duration(job.duration_ms)),
        ("Dead-lettered", escape(job.dead_reason or "")),
        ("Error", escape(f"{job.error.kind}: {job.error.message}") if job.error else ""),
        ("Trace", f"<code>{escape(trace)}</code>" if trace else ""),
        ("Deleted", when(job.deleted_at) if job.deleted_at else ""),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts if value)
    outputs_part = _outputs(job, files, root)
    tree = (
        f'<ul class="tree">{_node(pipeline, job.id, root)}</ul>'
        if pipeline and (pipeline.follow_ups or pipeline.job.id != job.id)
        else '<p class="muted">A job of its own: no parent, no follow-ups.</p>'
    )
    body = f"""<p><a href="{root}./">← Jobs</a></p>
<h1>Job <code>{escape(job.id)}</code></h1>
<div data-live="job">
<dl class="facts">{rows}</dl>
<h2>Pipeline</h2>
{tree}
<h2>Outputs</h2>
{outputs_part}
<h2>Timeline</h2>
{_timeline(job.events)}
</div>
"""
    return document(f"Job {job.id}", "jobs", body, root)


def _outputs(job: JobRecord, files: Sequence[OutputFile] | None, root: str) -> str:
    if files:
        return '<ul class="outputs">' + "".join(_output(job.id, f, root) for f in files) + "</ul>"
    if not job.outputs:
        return '<p class="muted">None.</p>'
    names = "".join(f"<li><code>{escape(name)}</code></li>" for name in job.outputs)
    where = "deleted, past retention, or" if job.status == "succeeded" else ""
    return (
        f'<ul>{names}</ul><p class="muted">Not in the blob store the console reads ({where}'
        f" none given): fetch them with <code>jobsuite result {escape(job.id)}</code>.</p>"
    )


def _output(job_id: str, f: OutputFile, root: str) -> str:
    if f.size is None:
        return (
            f"<li><code>{escape(f.name)}</code> <span class='error'>gone from the store</span></li>"
        )
    href = f"{root}console/jobs/{quote(job_id)}/outputs/{quote(f.name, safe='')}"
    preview = (
        f'<img src="{href}" alt="{escape(f.name)}" loading="lazy" class="preview">'
        if f.image
        else ""
    )
    return (
        f'<li>{preview}<a href="{href}" download>{escape(f.name)}</a> '
        f'<span class="muted">{escape(f.content_type)}, {human_size(f.size)}</span></li>'
    )


def _node(node: PipelineNode, here: str, root: str) -> str:
    j = node.job
    label = f"{escape(j.type)} <code>{escape(j.id)}</code> {status_badge(j.status)}"
    link = (
        f'<strong aria-current="page">{label}</strong>'
        if j.id == here
        else f'<a href="{root}console/jobs/{quote(j.id)}">{label}</a>'
    )
    children = "".join(_node(c, here, root) for c in node.follow_ups)
    return f"<li>{link}" + (f"<ul>{children}</ul>" if children else "") + "</li>"


def _timeline(events: Sequence[RecordedEvent]) -> str:
    if not events:
        return '<p class="muted">No events.</p>'
    rows = []
    for e in events:
        error = f"{e.error.kind}: {e.error.message}" if e.error else ""
        refused = f' <span class="status status-failed">refused: {escape(e.refused or "")}</span>'
        rows.append(
            f"<tr><td>{when(e.at)}</td><td>{escape(e.event)}"
            f"{refused if e.refused else ''}</td>"
            f"<td>{escape(e.service)} <span class='muted'>{escape(e.instance)}</span></td>"
            f'<td class="number">{e.attempt}</td><td class="number">{duration(e.duration_ms)}</td>'
            f"<td>{escape(error)}</td></tr>"
        )
    return (
        '<table class="timeline"><thead><tr><th scope="col">At</th><th scope="col">Event</th>'
        '<th scope="col">Service, instance</th><th scope="col">Attempt</th>'
        '<th scope="col">Took</th><th scope="col">Error</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
