"""HTTP metrics of the gateway and the audit read API, and their `GET /metrics`.

`CountRequests` (ASGI middleware) counts every request by route *template* (`/jobs/{job_id}`,
never the path a client typed: one series per route, not one per id), method and status, and
times it. A path no route matches is `other`; a method outside the standard ones is `other`.
`GET /metrics` is open like `/healthz` (Prometheus scrapes without our API key; see
`shared.auth.OPEN_PATHS`): it shows counts and times only, by those labels.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import exposition

OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    """`jobsuite_http_requests_total{route,method,status}` and
    `jobsuite_http_request_duration_seconds{route,method}` in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "jobsuite_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "jobsuite_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer, by route template"
            " and method.",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The template of the route among `routes` that answers `scope` (a route of another
    method counts: its 405 is about that route), else `other`."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return path_of(route)
        if match is Match.PARTIAL and partial is None:
            partial = path_of(route)
    return partial or OTHER


def path_of(route: object) -> str:
    """A route's path template (`/jobs/{job_id}`; a mount's prefix), else `other`."""
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else OTHER


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER


class CountRequests:
    """ASGI middleware: every HTTP request counted and timed in `metrics`. Add it last
    (outermost), so refusals of the other middleware (a foreign Host, a missing key, a body
    too large) are counted too."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        before = dict(scope)  # routing changes the scope (a mount's root_path)
        status = 500  # an exception with no answer sent: the server answers 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            self.metrics.observe(
                _route_label(scope, before),
                method_label(str(scope.get("method", ""))),
                status,
                time.perf_counter() - started,
            )


def _route_label(scope: Scope, before: Scope) -> str:
    """The route the router chose (it sets `scope["route"]`); for a request answered before
    routing (a 401, a foreign Host) the app's own routes are matched, and one only an
    included router holds is `other`."""
    chosen = scope.get("route")
    if chosen is not None:
        return path_of(chosen)
    app: Any = scope.get("app")
    routes = [r for r in getattr(app, "routes", []) if isinstance(getattr(r, "path", None), str)]
    return route_template(routes, before)


def install(
    app: FastAPI, registry: CollectorRegistry, served: CollectorRegistry | None = None
) -> HttpMetrics:
    """`GET /metrics` (out of the OpenAPI document) serving `registry` (or `served`: the sum
    of several processes' counts, shared/multiprocess_metrics.py), and every request counted
    into it. Call after the app's other middleware, so this one is outermost."""
    metrics = HttpMetrics(registry)
    shown = served or registry

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        body, media_type = exposition(shown, request.headers.get("accept", ""))
        return Response(body, media_type=media_type)

    app.add_middleware(CountRequests, metrics=metrics)
    return metrics
