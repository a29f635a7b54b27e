"""structlog set-up: JSON lines in containers, a console renderer on a terminal.

Everything logged while a job runs carries `job_id`, `type`, `attempt` and `service`, bound
through contextvars in the job's own context (`job_context`). pika's standard-library logs
go through the same renderer.

Our own lines are rendered by structlog and written straight to stdout, a third of the cost
of a trip through the standard library's logging (a line per job in every worker, one per
request in the gateway); only other libraries' lines take that trip.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)
_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _STAMP,
    structlog.processors.StackInfoRenderer(),
]


class _JsonLine:
    """Our own lines' processors for the JSON format, in one call: the same line, key for
    key, as `_SHARED_PROCESSORS` then the exception and JSON renderers give, at about half
    the cost (a worker writes a line per job, the gateway one per request). Stack info and
    exceptions go to structlog's own renderers, when a line has them."""

    def __init__(self) -> None:
        # This module's frame is not the caller whose stack a line shows.
        self._stack = structlog.processors.StackInfoRenderer(additional_ignores=[__name__])
        self._exception = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)
        )
        # JSONRenderer's json.dumps, with its encoder made once instead of per line.
        self._encode = json.JSONEncoder(default=_json_fallback).encode

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
        structlog.processors.add_log_level(logger, method_name, event_dict)
        event_dict["logger"] = logger.name  # add_logger_name: our lines carry no _record
        _STAMP(logger, method_name, event_dict)
        if "stack_info" in event_dict:
            event_dict = self._stack(logger, method_name, event_dict)
        if "exc_info" in event_dict:
            event_dict = self._exception(logger, method_name, event_dict)
        return self._encode(event_dict)


def _json_fallback(value: Any) -> Any:
    """What JSONRenderer makes of a value JSON has no type for: its `__structlog__()`, or
    its repr."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


class _Stdout:
    """structlog's logger: each rendered line to the stream configure_logging last chose
    (looked up per line, so a logger cached before a reconfiguration follows it). `name`
    is what add_logger_name puts in the line, as for a standard-library logger."""

    stream: TextIO = sys.stdout
    _lock = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with self._lock:
            try:
                self.stream.write(message + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                # A closed stdout, or a pipe whose reader is gone: the line is lost, but the
                # code that logged goes on (a job thread must not die of it), as with the
                # standard library's handlers.
                pass

    debug = info = warning = error = critical = exception = msg


def _stdout_logger(name: str = "", *_args: Any) -> _Stdout:
    return _Stdout(name)


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the standard library once per process."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # No frame locals: they would put job data and connection URLs with passwords in logs.
        extra: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        ]
        ours: list[Any] = [_JsonLine()]
    else:
        # Colours only on a terminal: under `make run` the output is a pipe, often to a file.
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        extra = []
        ours = [*_SHARED_PROCESSORS, renderer]

    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    _Stdout.stream = sys.stdout
    structlog.configure(
        processors=ours,
        logger_factory=_stdout_logger,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # Not cached: a logger follows a later configure_logging (format, level, stream).
        cache_logger_on_first_use=False,
    )
    # Other libraries' standard-library lines (pika, uvicorn, httpx), rendered alike.
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
    root.setLevel(numeric_level)
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


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
