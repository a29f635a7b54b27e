"""The read API (FastAPI): what happened to a job, the jobs by status and type, the events in
log order, counts, answered from the read model (SQLite, or PostgreSQL with STATE_URL); and
the web console on `/`.

Every route but `/healthz` and `/metrics` needs an admin key (the shared key store):
`Authorization: Bearer <key>`, or HTTP Basic with the key as the password, which is what a
browser asks for after the 401's `WWW-Authenticate: Basic`. `keys` None (AUTH_DISABLED)
leaves it open. `/metrics` shows counts by event name and route template only."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from services.audit.console.routes import Console
from services.audit.console.routes import install as install_console
from services.audit.model import ReadModelReader
from shared import apidocs, http_metrics
from shared.asgi_app import fastapi_app
from shared.auth import BASIC_CHALLENGE, RequireKey
from shared.errors import StateError
from shared.http_guard import GuardPolicy, HttpGuard
from shared.log import get_logger
from shared.messages import JobRecord, JobStatus, RecordedEvent
from shared.state import ApiKeyStore

log = get_logger(__name__)
MAX_PAGE = 1000


class JobPage(BaseModel):
    jobs: list[JobRecord]
    next_cursor: int | None = None
    """Pass as `cursor` for the next (older) page; null on the last page."""


class EventEntry(BaseModel):
    seq: int
    recorded_at: str
    event: RecordedEvent


class EventPage(BaseModel):
    events: list[EventEntry]
    next_since: int
    """Pass as `since` for the next page (the seq of the last event returned)."""
    more: bool


class Health(BaseModel):
    status: str
    """`ok`, or `stalled` (503) when events cannot be written; `reason` says why."""
    consuming: bool
    head_seq: int
    reason: str | None = None


def create_app(
    queries: ReadModelReader,
    consuming: Callable[[], bool] = lambda: True,
    stalled: Callable[[], str | None] = lambda: None,
    *,
    keys: ApiKeyStore | None,
    guard: GuardPolicy | None = None,
    metrics: CollectorRegistry | None = None,
    console: Console | None = None,
) -> FastAPI:
    """`keys`: the API key store (None: AUTH_DISABLED); `guard`: the Host/Origin policy
    (shared/http_guard.py), loopback names by default; `metrics`: the service's registry,
    served on `/metrics` with the API's request counts (a new one when not given); `console`:
    the web console at `/` (console/routes.py), none when not given."""
    app = fastapi_app(
        title="jobsuite audit",
        version="1",
        description="The audit read model: every job's status and its event history."
        " Every route but /healthz and /metrics needs an admin API key (Bearer, or the"
        " password of HTTP Basic).",
        docs_url=None,
        redoc_url=None,
    )
    apidocs.install(app)
    app.add_middleware(
        RequireKey,
        store=keys,
        challenge=BASIC_CHALLENGE,
        basic=True,
        admin_only=True,
        # Its schema and docs describe the log: admins only. /metrics: counts by event name
        # and route template, for a Prometheus that has no key.
        open_paths={"/healthz", "/metrics"},
    )
    app.add_middleware(HttpGuard, policy=guard or GuardPolicy())
    http_metrics.install(app, metrics or CollectorRegistry())  # outermost: counts refusals too

    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(StateError)  # the read model in PostgreSQL (STATE_URL)
    async def read_model_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        log.error("read_model_query_failed", error=str(exc))
        return JSONResponse({"detail": "the read model is unavailable"}, status_code=503)

    @app.get(
        "/healthz",
        response_model=Health,
        response_model_exclude_none=True,
        responses={503: {"model": Health, "description": "stalled: `reason` says why"}},
    )
    def healthz() -> Any:
        reason = stalled()
        health = Health(
            status="stalled" if reason else "ok",
            consuming=consuming(),
            head_seq=queries.head_seq(),
            reason=reason,
        )
        if reason:
            return JSONResponse(health.model_dump(), status_code=503)
        return health

    @app.get("/jobs/{job_id}", responses={404: {"description": "no such job"}})
    def get_job(job_id: str) -> JobRecord:
        record = queries.job(job_id)
        if record is None:
            raise HTTPException(404, f"no job {job_id!r} in the audit record")
        return record

    @app.get("/jobs")
    def list_jobs(
        status: JobStatus | None = None,
        type: Annotated[str | None, Query(max_length=64, description="job type")] = None,
        since: Annotated[
            datetime | None, Query(description="only jobs with an event at or after this time")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[
            int | None, Query(ge=1, description="`next_cursor` of the previous page")
        ] = None,
    ) -> JobPage:
        jobs, next_cursor = queries.jobs(
            status=status, job_type=type, since=since, limit=limit, before=cursor
        )
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    @app.get("/events")
    def list_events(
        since: Annotated[int, Query(ge=0, description="the seq after which to start")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> EventPage:
        rows = queries.events(since, limit + 1)
        page = [EventEntry.model_validate(r) for r in rows[:limit]]
        last = page[-1].seq if page else since
        return EventPage(events=page, next_since=last, more=len(rows) > limit)

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        return queries.stats()

    if console is not None:
        install_console(app, queries, console)

    return app
