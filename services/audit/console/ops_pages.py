"""The console's operations pages: dead letters (replay, purge), workers seen, queues.
Server-rendered, every value escaped; the forms ask for a confirmation through the script.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from services.audit.console.layout import document, when_text
from shared.words import count

# --- dead letters -----------------------------------------------------------------------------


def dead_page(
    letters: Sequence[dict[str, Any]], *, notice: str = "", error: str = "", more: int = 0
) -> str:
    """`more`: dead letters in the queue past those shown."""
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
<p id="dead-count">{count(len(letters), "dead letter")}{_more(more)}</p>
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


def _more(more: int) -> str:
    if not more:
        return ""
    return (
        f", and {more} more in the queue, not shown: `jobsuite dlq list` lists them all,"
        " Replay all and Purge all take them all"
    )


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
<div>
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
