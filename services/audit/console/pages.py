"""The console's HTML pages: jobs, one job, dead letters, workers, queues. Server-rendered
from the read model (and the broker, for dead letters and queues), every value escaped.
Links are relative to the console's root, so it works behind a path prefix. The one script
(static/console.js) adds live updates and confirmations; without it, everything works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from services.audit.console.outputs import OutputFile
from shared.messages import JobRecord, RecordedEvent
from shared.words import count

STATUSES = ("submitted", "started", "retrying", "succeeded", "failed", "rejected", "dead")
SECTIONS = (
    ("jobs", "Jobs", ""),
    ("dead", "Dead letters", "console/dead"),
    ("workers", "Workers", "console/workers"),
    ("queues", "Queues", "console/queues"),
)


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


def document(title: str, section: str, body: str, root: str) -> str:
    """A whole page: `root` leads back to the console's root from the page's own path."""
    nav = "".join(
        f'<li><a href="{root}{path or "./"}"'
        f"{' aria-current=page' if name == section else ''}>{label}</a></li>"
        for name, label, path in SECTIONS
    )
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · jobsuite console</title>
<link rel="stylesheet" href="{root}console/static/console.css">
<script src="{root}console/static/console.js" defer></script></head>
<body data-root="{root}">
<header><a class="brand" href="{root}./">jobsuite</a>
<nav aria-label="Console"><ul>{nav}<li><a href="{root}docs">API</a></li></ul></nav></header>
<main>
{body}
</main>
</body>
</html>
"""


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


def status_badge(status: str) -> str:
    return f'<span class="status status-{escape(status)}">{escape(status)}</span>'


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


# --- dead letters -----------------------------------------------------------------------------


def dead_page(letters: Sequence[dict[str, Any]], *, notice: str = "", error: str = "") -> str:
    root = "../"
    said = f'<p class="notice" role="status">{escape(notice)}</p>' if notice else ""
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    rows = "\n".join(_dead_row(d, root) for d in letters) or (
        '<tr><td colspan="7" class="muted">No dead letters.</td></tr>'
    )
    every = (
        f"""<div class="actions">
<form method="post" action="{root}console/dead/replay" data-confirm="Replay every dead letter?">
<input type="hidden" name="all" value="true"><button type="submit">Replay all</button></form>
<form class="danger" method="post" action="{root}console/dead/purge"
 data-confirm="Drop every dead letter for good?">
<input type="hidden" name="all" value="true"><button type="submit">Purge all</button></form>
</div>"""
        if letters
        else ""
    )
    body = f"""<h1>Dead letters</h1>
<p class="muted">The jobs in the dead-letter queue now: replay puts one back on its queue as a
new life (attempt 1); purge drops it for good. The audit keeps their history either way.</p>
{said}{problem}
<p id="dead-count">{count(len(letters), "dead letter")}</p>
{every}
<table id="dead">
<thead><tr><th scope="col">Job</th><th scope="col">Type</th><th scope="col">Reason</th>
<th scope="col">Attempt</th><th scope="col">Died</th><th scope="col">Error</th>
<th scope="col">Actions</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
"""
    return document("Dead letters", "dead", body, root)


def _dead_row(d: dict[str, Any], root: str) -> str:
    job_id = str(d["job_id"])
    error = d.get("error") or {}
    why = f"{error.get('kind', '')}: {error.get('message', '')}" if error else ""
    deaths = f" x{d['deaths']}" if d.get("deaths", 1) > 1 else ""
    replay = (
        f'<form method="post" action="{root}console/dead/replay"'
        f' data-confirm="Replay job {escape(job_id)}?">'
        f'<input type="hidden" name="id" value="{escape(job_id)}">'
        f'<button type="submit" aria-label="Replay {escape(job_id)}">Replay</button></form>'
        if d.get("attempt") is not None
        else ""
    )
    purge = (
        f'<form class="danger" method="post" action="{root}console/dead/purge"'
        f' data-confirm="Drop job {escape(job_id)} for good?">'
        f'<input type="hidden" name="id" value="{escape(job_id)}">'
        f'<button type="submit" aria-label="Purge {escape(job_id)}">Purge</button></form>'
    )
    return (
        f'<tr data-id="{escape(job_id)}"><td><a class="id" href="{root}console/jobs/'
        f'{quote(job_id)}">{escape(job_id)}</a></td><td>{escape(str(d["type"]))}</td>'
        f"<td>{escape(str(d['reason']))}{deaths}<br><span class='muted'>"
        f"{escape(str(d.get('queue') or ''))}</span></td>"
        f'<td class="number">{escape(str(d.get("attempt") or "?"))}</td>'
        f"<td>{escape(when_text(d.get('died_at')))}</td><td>{escape(why)}</td>"
        f'<td class="actions">{replay}{purge}</td></tr>'
    )


# --- workers and queues -----------------------------------------------------------------------


def workers_page(workers: Sequence[dict[str, Any]]) -> str:
    root = "../"
    rows = "\n".join(_worker_row(w) for w in workers) or (
        '<tr><td colspan="6" class="muted">No worker has reported yet.</td></tr>'
    )
    body = f"""<h1>Workers</h1>
<p class="muted">Every worker instance seen in the recent events, the most recently heard
first. Failures count retries too.</p>
<div data-live="workers">
<table id="workers">
<thead><tr><th scope="col">Service</th><th scope="col">Instance</th>
<th scope="col">Job types</th><th scope="col">Last event</th><th scope="col">Done</th>
<th scope="col">Failed</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</div>
"""
    return document("Workers", "workers", body, root)


def _worker_row(w: dict[str, Any]) -> str:
    last = f"{escape(w['last_event'])}<br><span class='muted'>{escape(when_text(w['last_at']))}"
    return (
        f"<tr><td>{escape(w['service'] or '')}</td><td><code>{escape(w['instance'] or '')}"
        f"</code></td><td>{escape(', '.join(w['types']))}</td><td>{last}</span></td>"
        f'<td class="number">{w["done"]}</td><td class="number">{w["failed"]}</td></tr>'
    )


def queues_page(
    queues: Sequence[tuple[str, str | None, int, int]],
    rates: dict[str, dict[str, int]],
    error: str = "",
) -> str:
    """`queues`: (name, job type or None, ready, consumers); `rates`: per job type, jobs
    submitted and finished in the last minute."""
    root = "../"
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    rows = "\n".join(_queue_row(q, rates) for q in queues)
    body = f"""<h1>Queues</h1>
<p class="muted">Messages ready in each queue and the consumers on it, asked of the broker
now; jobs in and out per minute, from the events of the last minute.</p>
{problem}
<div data-live="queues">
<table id="queues">
<thead><tr><th scope="col">Queue</th><th scope="col">Ready</th>
<th scope="col">Consumers</th><th scope="col">In /min</th>
<th scope="col">Out /min</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</div>
"""
    return document("Queues", "queues", body, root)


def _queue_row(queue: tuple[str, str | None, int, int], rates: dict[str, dict[str, int]]) -> str:
    name, job_type, depth, consumers = queue
    rate = rates.get(job_type or "", {}) if job_type else None
    flows = (
        f'<td class="number">{rate.get("submitted", 0)}</td>'
        f'<td class="number">{rate.get("finished", 0)}</td>'
        if rate is not None
        else "<td></td><td></td>"
    )
    return (
        f'<tr><td><code>{escape(name)}</code></td><td class="number">{depth}</td>'
        f'<td class="number">{consumers}</td>{flows}</tr>'
    )


# --- values as people read them ---------------------------------------------------------------


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    return f'<time datetime="{utc.isoformat()}">{utc.strftime("%Y-%m-%d %H:%M:%S")}</time>'


def when_text(iso: object) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(str(iso)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(iso)


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    return f"{size / 1000:.1f} kB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"


def duration(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
