"""structlog set-up: JSON lines in containers, a console renderer on a terminal.

Everything logged while a job runs carries `job_id`, `type`, `attempt` and `service`, bound
through contextvars in the job's own context (`job_context`). pika's standard-library logs
go through the same renderer.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the standard library once per process."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # No frame locals: they would put job data and connection URLs with passwords in logs.
        extra: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        ]
    else:
        # Colours only on a terminal: under `make run` the output is a pipe, often to a file.
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        extra = []

    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED_PROCESSORS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *extra,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika is chatty at INFO about every connection step; its warnings still come through.
    logging.getLogger("pika").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request at INFO: a line per status lookup the gateway makes of the audit.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    # uvicorn says "Started server process", "Waiting for application startup." and two more
    # lines at each start; each service logs its own line saying it listens. Its errors (a
    # port in use) still come through.
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def bind_job(
    service: str, job_id: str, job_type: str, attempt: int, trace_id: str | None = None
) -> None:
    """Start a job's log context: every line until the next job carries these fields."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        service=service, job_id=job_id, type=job_type, attempt=attempt
    )
    if trace_id is not None:
        structlog.contextvars.bind_contextvars(trace_id=trace_id)


def job_context(
    service: str, job_id: str, job_type: str, attempt: int, trace_id: str | None = None
) -> contextvars.Context:
    """A context of its own for one job, its fields bound: whatever runs in it (the job
    thread, and calls it hands to the I/O thread in copies of it) logs them; nothing else
    does, so no job's fields leak into the next."""
    context = contextvars.copy_context()
    context.run(bind_job, service, job_id, job_type, attempt, trace_id)
    return context


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
