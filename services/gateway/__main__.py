"""`python -m services.gateway`: the HTTP API on GATEWAY_HOST:GATEWAY_PORT (uvicorn), in one
process or in GATEWAY_WORKERS of them (workers.py)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.worker_share import WorkerShare
from services.gateway.workers import EXIT_STARTUP, serve_in_workers
from shared.config import Settings, config_error, settings_or_exit
from shared.errors import ConfigError, StateError
from shared.heap import settle_heap
from shared.log import configure_logging, get_logger
from shared.multiprocess_metrics import count_into
from shared.pillow import use_pixel_limit

log = get_logger("services.gateway")


def main() -> int:
    settings = settings_or_exit()
    configure_logging("gateway", settings.log_level, settings.log_format)
    use_pixel_limit(settings.max_image_pixels)
    host, port, workers = settings.gateway_host, settings.gateway_port, settings.gateway_workers
    log.info("gateway_listening", host=host, port=port, workers=workers)
    if workers > 1:
        return serve_in_workers(host, port, workers, lambda s, w: serve_worker(settings, s, w))
    try:
        app = create_app(settings)
    except (ConfigError, StateError) as e:  # STATE_DIR not writable, a bucket missing
        return config_error(e)
    settle_heap()  # the app and its schemas, built: out of the collector's sight
    return _serve(uvicorn.Server(_uvicorn_config(app, host, port)))


def _serve(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a stop, as in uvicorn.run
        server.run(sockets=sockets)
    return 0 if server.started else EXIT_STARTUP  # as uvicorn.run: the port taken, say


class _AnnouncedServer(uvicorn.Server):
    """A server that calls `on_serving` once it serves (its app started, its socket taken)."""

    def __init__(self, config: uvicorn.Config, on_serving: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_serving = on_serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_serving()


def _uvicorn_config(app: FastAPI, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Config:
    # log_config=None: uvicorn's own lines go through our structlog set-up; one line per
    # accepted or rejected job replaces the access log.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def serve_worker(settings: Settings, socks: list[socket.socket], share: WorkerShare) -> int:
    """One of GATEWAY_WORKERS processes, forked by workers.py: its app on the shared socket."""
    count_into(share.metrics_folder)  # before the app makes its metrics
    try:
        app = create_app(settings, share=share)
    except (ConfigError, StateError) as e:
        return config_error(e)
    settle_heap()

    def serving() -> None:
        share.mark_serving()
        log.info("gateway_worker_serving", worker=share.index)

    return _serve(_AnnouncedServer(_uvicorn_config(app), serving), socks)


if __name__ == "__main__":
    raise SystemExit(main())
