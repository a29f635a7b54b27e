"""The services' FastAPI apps, made alike: FastAPI's own OpenTelemetry instrumentation off.

FastAPI 0.165 and later instrument every app by default: each request asks the global
OpenTelemetry providers whether anyone configured them (about 2 % of the gateway's CPU per
accepted job), and once a library or `FASTAPI_OTEL_AUTO_CONFIGURE=true` sets them up, every
request gets FastAPI's own server span, metrics and log records beside ours. The services
make their own spans (shared/spans.py, to OTEL_EXPORTER_OTLP_ENDPOINT) and Prometheus metrics
(shared/http_metrics.py), so FastAPI's are turned off; an older FastAPI has none to turn off.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI

NATIVE_TELEMETRY_OFF = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "auto_configure": False,
}


# Read once: FastAPI's signature does not change while the process runs.
_TAKES_TELEMETRY = "telemetry" in inspect.signature(FastAPI.__init__).parameters


def fastapi_app(**options: Any) -> FastAPI:
    """`FastAPI(**options)`, with FastAPI's own telemetry off where it has any."""
    if _TAKES_TELEMETRY:
        options.setdefault("telemetry", NATIVE_TELEMETRY_OFF)
    return FastAPI(**options)
