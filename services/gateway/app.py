"""The gateway's FastAPI app: job submission, job status and results, health.

OpenAPI at `/openapi.json` (FastAPI's, completed by apidoc.py); `/docs` and `/redoc` work
offline (shared/apidocs.py). Route modules hold the endpoints;
this module wires them to the gateway's parts and to the error handlers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway import apidoc, job_routes, rejections, submit_routes
from services.gateway.bodylimit import BodyLimit
from services.gateway.context import SERVICE, Gateway, GatewayDep
from services.gateway.publisher import JobPublisher
from services.gateway.tracing import AcceptSpan
from services.gateway.worker_share import WorkerShare
from shared import apidocs, http_metrics
from shared.asgi_app import fastapi_app
from shared.auth import RequireKey, warn_if_disabled
from shared.config import Settings
from shared.http_guard import GuardPolicy, HttpGuard
from shared.log import get_logger
from shared.spans import open_spans

log = get_logger(__name__)
DESCRIPTION = """Submit image-resize, PDF-render and e-mail jobs; follow them; fetch results.

Every request but health, metrics and these docs needs `Authorization: Bearer <key>` (a
missing, unknown, revoked or expired key is **401**). A client sees only its own jobs.

A submission answers **202** with the job's id only after RabbitMQ confirmed the job;
**503** (with `Retry-After`) when it cannot take it: nothing is kept, unless the job was sent
but never confirmed (`publish_in_doubt`), when a retry with the same `Idempotency-Key` sends
that very job again."""


class Health(BaseModel):
    status: str
    broker: str


def guard_policy(settings: Settings) -> GuardPolicy:
    return GuardPolicy.of(settings.allowed_hosts, settings.cors_origins)


def create_app(
    settings: Settings, *, publisher: JobPublisher | None = None, share: WorkerShare | None = None
) -> FastAPI:
    """The gateway's app; `share`: it is one of GATEWAY_WORKERS processes (services/gateway/
    workers.py), counting its rate limits and metrics with its siblings."""
    gateway = Gateway.build(settings, publisher, share)
    spans = open_spans(settings, SERVICE)  # NO_SPANS unless OTEL_EXPORTER_OTLP_ENDPOINT

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.start()
        try:
            yield
        finally:
            await gateway.aclose()
            spans.close()  # the last requests' spans, flushed before the exit

    app = fastapi_app(
        title="jobsuite gateway",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    apidocs.install(app)
    apidoc.install(app, settings)
    app.state.gateway = gateway
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    warn_if_disabled(settings.auth_disabled, SERVICE, gateway.keys)
    # Then the key: no route, body or upload is touched without one.
    app.add_middleware(RequireKey, store=gateway.keys, after=gateway.rate.check)
    # Added last, so outermost: a foreign Host or Origin is refused before anything reads the
    # request (and a CORS preflight is answered before a key is asked for).
    app.add_middleware(HttpGuard, policy=guard_policy(settings))
    # Outermost of all: every request counted, refusals of the middleware above too; the
    # /metrics route itself is open (shared.auth.OPEN_PATHS) and not rate limited.
    http_metrics.install(app, gateway.metrics.registry, served=gateway.metrics.served)
    if spans.enabled:  # outermost: from the request's arrival to its answer
        app.add_middleware(AcceptSpan, spans=spans)
    rejections.install(app, gateway.submitter.publish_rejection)
    # The key check is RequireKey's; the document declares it (apidoc.py), no dependency per
    # request does.
    app.include_router(submit_routes.router)
    app.include_router(job_routes.router)

    @app.get("/healthz", tags=["health"], response_model=Health, responses={503: {"model": Health}})
    def healthz(gateway: GatewayDep) -> Health | JSONResponse:
        """Whether the gateway holds a connection to the broker (503 when it does not)."""
        if gateway.publisher.connected:
            return Health(status="ok", broker="connected")
        health = Health(status="unavailable", broker=gateway.publisher.last_error)
        return JSONResponse(health.model_dump(), 503)

    @app.get("/readyz", tags=["health"], response_model=Health, responses={503: {"model": Health}})
    def readyz(gateway: GatewayDep) -> Health | JSONResponse:
        """Whether the gateway serves requests: started, and its blob store writable."""
        broker = "connected" if gateway.publisher.connected else gateway.publisher.last_error
        unwritable = gateway.blobs.check_writable()
        if unwritable is not None:
            log.warning("blob_store_not_writable", reason=unwritable)
            return JSONResponse({"status": "blob store not writable", "broker": broker}, 503)
        return Health(status="ready", broker=broker)

    return app
