"""The console's routes on the audit service's HTTP port: `/` (jobs), `/console/jobs/{id}`,
`/console/dead` (with replay and purge), `/console/workers`, `/console/queues`, the live
stream `/console/live` and the console's own script and stylesheet. The read API's key check
(an admin key, as the password of HTTP Basic in a browser) covers every one of them.

Dead letters and queues are asked of the broker at each request, as the `dlq` broker user
(AUDIT_DLQ_AMQP_URL; AMQP_URL when unset): replaying publishes `job.replayed`, which the audit
believes only from that user.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Form, HTTPException, Path, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from services.audit.console import job_pages, ops_pages
from services.audit.console.job_pages import STATUSES, JobFilters, PipelineNode
from services.audit.console.outputs import INLINE, chunks, output_files
from services.audit.dlq_box import Box, Held, dead_letters, summary
from services.audit.lifecycle import as_utc
from services.audit.model import ReadModelReader
from shared.amqp import connect_once
from shared.blobs import BlobStore
from shared.config import Settings
from shared.errors import BrokerError
from shared.events import EventSource, instance_name
from shared.jobtypes import JOB_TYPES
from shared.live import MEDIA_TYPE, STREAM_HEADERS, Changes
from shared.log import get_logger
from shared.messages import JobRecord, utc_now
from shared.topology import Names
from shared.words import count

log = get_logger(__name__)
PAGE_SIZE = 100
DEAD_SHOWN = 500  # dead letters a page view takes (and gives back): a long queue is cut
TAKE_ATTEMPTS, TAKE_PAUSE_S = 3, 1.0
RATE_WINDOW = timedelta(minutes=1)
MAX_PIPELINE = 200  # jobs drawn in one pipeline tree; a longer chain is cut there
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    # Not no-referrer: under that, a browser sends `Origin: null` with the page's own forms,
    # and the guard refuses them as from a foreign origin.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Text = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True)
class Console:
    """What the console needs besides the read model: the live changes (told by the
    recorder) and the settings it reaches the broker with."""

    live: Changes
    settings: Settings
    blobs: BlobStore | None = None  # read only: previews and downloads of outputs

    @classmethod
    def of(cls, settings: Settings, live: Changes, blobs: BlobStore | None = None) -> Console:
        broker = settings.audit_dlq_amqp_url or settings.amqp_url
        return cls(live, replace(settings, amqp_url=broker), blobs)


def install(app: FastAPI, queries: ReadModelReader, console: Console) -> None:
    assets = StaticFiles(directory=str(files("services.audit.console") / "static"))
    app.mount("/console/static", assets, "console-static")

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers=_PAGE_HEADERS)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def jobs(
        id: Text = "",
        type: Text = "",
        status: Text = "",
        client: Text = "",
        since: Text = "",
        cursor: Annotated[int | None, Query(ge=1)] = None,
    ) -> Response:
        filters = JobFilters(type, status, client, since, id.strip())
        if filters.id and queries.job(filters.id) is not None:
            return RedirectResponse(f"console/jobs/{quote(filters.id)}", status_code=303)
        error, moment = "", None
        if since:
            try:
                moment = as_utc(datetime.fromisoformat(since))  # year 1 at +01:00 overflows
            except (ValueError, OverflowError):
                error = f"`since` {since!r} is not a date and time"
        if status and status not in STATUSES:
            error = f"no status {status!r}: one of {', '.join(STATUSES)}"
        found, next_cursor = (
            ([], None)
            if error
            else queries.jobs(
                status=status or None,
                job_type=type or None,
                since=moment,
                limit=PAGE_SIZE,
                before=cursor,
                client=client or None,
                id_prefix=filters.id or None,
            )
        )
        page = job_pages.jobs_page(
            found,
            filters,
            job_types=sorted({*queries.job_types(), *(spec.name for spec in JOB_TYPES)}),
            clients=queries.clients(),
            stats=queries.stats(),
            next_cursor=next_cursor,
            error=error,
        )
        return html(page, 422 if error else 200)

    @app.get("/console/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job(job_id: Annotated[str, Path(max_length=200)]) -> HTMLResponse:
        record = queries.job(job_id)
        if record is None:
            raise HTTPException(404, f"no job {job_id!r} in the audit record")
        files = output_files(console.blobs, job_id) if console.blobs is not None else None
        return html(job_pages.job_page(record, _pipeline(queries, record), files))

    @app.get("/console/jobs/{job_id}/outputs/{name}", include_in_schema=False)
    def output(
        job_id: Annotated[str, Path(max_length=200)], name: Annotated[str, Path(max_length=255)]
    ) -> StreamingResponse:
        if console.blobs is None:
            raise HTTPException(404, "the console was given no blob store (BLOB_STORE)")
        files = output_files(console.blobs, job_id) or []
        found = next((f for f in files if f.name == name and f.size is not None), None)
        if found is None:
            raise HTTPException(404, f"job {job_id} has no output {name!r} in the blob store")
        inline = found.content_type in INLINE
        kind = found.content_type if inline else "application/octet-stream"
        disposition = "inline" if inline else "attachment"
        headers = {
            "Content-Disposition": f"{disposition}; filename*=utf-8''{quote(found.name, safe='')}",
            "Content-Length": str(found.size),
            # An output is data, never a page of ours: nothing in it may run here.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=300",
        }
        return StreamingResponse(chunks(console.blobs, found.key), media_type=kind, headers=headers)

    @app.get("/console/workers", response_class=HTMLResponse, include_in_schema=False)
    def workers() -> HTMLResponse:
        return html(ops_pages.workers_page(queries.workers()))

    @app.get("/console/queues", response_class=HTMLResponse, include_in_schema=False)
    def queues() -> HTMLResponse:
        rates = queries.rates(utc_now() - RATE_WINDOW)
        try:
            return html(ops_pages.queues_page(_queue_depths(console.settings), rates))
        except BrokerError as e:
            return html(ops_pages.queues_page([], rates, f"the broker did not answer: {e}"), 503)

    @app.get("/console/dead", response_class=HTMLResponse, include_in_schema=False)
    def dead(done: Annotated[str, Query(max_length=5000)] = "") -> HTMLResponse:
        try:
            with _held(console, DEAD_SHOWN) as box:
                letters = [summary(h, _errors(queries, h)) for h in box.held]
                more = box.left
        except BrokerError as e:
            return html(ops_pages.dead_page([], error=f"the broker did not answer: {e}"), 503)
        return html(ops_pages.dead_page(letters, notice=done, more=more))

    @app.post("/console/dead/replay", include_in_schema=False)
    def replay(
        id: Annotated[list[str] | None, Form(max_length=255)] = None,
        all: Annotated[bool, Form()] = False,
    ) -> Response:
        source = EventSource("audit-console", instance_name())
        replayed, skipped = 0, 0
        try:
            with _held_for(console, id, all) as (box, chosen, missing):
                for h in chosen:
                    if h.dead.job is None:
                        skipped += 1  # not a job at all: it can only be purged
                        continue
                    box.replay(h, source)
                    replayed += 1
        except BrokerError as e:
            log.error("console_replay_failed", replayed=replayed, error=str(e))
            done = count(replayed, "dead letter")
            return _broker_failed(f"finish the replay ({done} replayed before it stopped)", e)
        log.info("console_replayed", replayed=replayed, unreplayable=skipped)
        said = f"Replayed {count(replayed, 'dead letter')}." + (
            f" {count(skipped, 'body', 'bodies')} that are not jobs can only be purged."
            if skipped
            else ""
        )
        return _back(said + _gone(missing))

    @app.post("/console/dead/purge", include_in_schema=False)
    def purge(
        id: Annotated[list[str] | None, Form(max_length=255)] = None,
        all: Annotated[bool, Form()] = False,
    ) -> Response:
        try:
            with _held_for(console, id, all) as (box, chosen, missing):
                for h in chosen:
                    box.drop(h)
        except BrokerError as e:
            return _broker_failed("finish the purge (what was dropped stays dropped)", e)
        log.info("console_purged", dropped=len(chosen))
        return _back(f"Dropped {count(len(chosen), 'dead letter')} for good." + _gone(missing))

    @app.get("/console/live", include_in_schema=False)
    async def live() -> StreamingResponse:
        stream = console.live.stream()
        return StreamingResponse(stream, media_type=MEDIA_TYPE, headers=STREAM_HEADERS)


def _held(console: Console, limit: int | None = None) -> Any:
    return dead_letters(console.settings, f"audit-console:{instance_name()}", limit)


@contextmanager
def _held_for(
    console: Console, ids: list[str] | None, every: bool
) -> Iterator[tuple[Box, list[Held], list[str]]]:
    """The dead letters asked for, held, and the ids asked for that are not there. A page
    view in another tab holds the dead letters for a moment, so an id not found is looked
    for again before it is called gone (replayed or purged meanwhile)."""
    wanted = set(ids or ())
    if not every and not wanted:
        raise HTTPException(422, "name the dead letters (`id`) or ask for `all`")
    for attempt in range(TAKE_ATTEMPTS):
        with _held(console) as box:
            chosen = list(box.held) if every else [h for h in box.held if h.dead.job_id in wanted]
            missing = sorted(wanted - {h.dead.job_id for h in chosen})
            if not missing or attempt == TAKE_ATTEMPTS - 1:
                yield box, chosen, missing
                return
        time.sleep(TAKE_PAUSE_S)


def _gone(missing: list[str]) -> str:
    if not missing:
        return ""
    gone = ", ".join(missing)
    return f" Not in the dead letters any more (replayed or purged meanwhile): {gone}."


def _broker_failed(action: str, e: BrokerError) -> HTMLResponse:
    log.error("console_dead_letters_failed", action=action, error=str(e))
    page = ops_pages.dead_page([], error=f"could not {action}: the broker did not answer: {e}")
    return HTMLResponse(page, status_code=503, headers=_PAGE_HEADERS)


def _back(notice: str) -> RedirectResponse:
    # Relative to /console/dead/<action>: the dead letters page, saying what was done.
    return RedirectResponse(f"../dead?{urlencode({'done': notice})}", status_code=303)


def _errors(queries: ReadModelReader, h: Held) -> dict[str, Any]:
    record = queries.job(h.dead.job_id)
    if record is None or record.error is None:
        return {}
    return {h.dead.job_id: record.error.model_dump()}


def _pipeline(queries: ReadModelReader, job: JobRecord) -> PipelineNode:
    """The whole pipeline `job` is part of, from its first job down."""
    root, seen = job, {job.id}
    while root.parent_id is not None and len(seen) < MAX_PIPELINE:
        parent = queries.job(root.parent_id)
        if parent is None or parent.id in seen:
            break
        root = parent
        seen.add(root.id)
    budget = [MAX_PIPELINE]

    def grow(record: JobRecord) -> PipelineNode:
        children = []
        for child in queries.follow_ups(record.id):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            children.append(grow(child))
        return PipelineNode(record, children)

    return grow(root)


def _queue_depths(settings: Settings) -> list[tuple[str, str | None, int, int]]:
    """(queue, the job type it holds or None, messages ready, consumers) of every queue."""
    names = Names(settings.namespace)
    queues: list[tuple[str, str | None]] = [
        (names.task_queue(spec.name), spec.name) for spec in JOB_TYPES
    ]
    queues += [(q, None) for q in (names.dead_queue, names.audit_events_queue)]
    queues.append((names.audit_dead_queue, None))
    connection = connect_once(settings, f"audit-console:{instance_name()}")
    try:
        channel = connection.channel()
        return [(queue, job_type, *channel.queue_depth(queue)) for queue, job_type in queues]
    finally:
        connection.close()
