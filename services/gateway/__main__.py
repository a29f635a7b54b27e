"""`python -m services.gateway`: the HTTP API on GATEWAY_HOST:GATEWAY_PORT (uvicorn)."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from shared.config import config_error, settings_or_exit
from shared.errors import ConfigError, StateError
from shared.heap import settle_heap
from shared.log import configure_logging, get_logger
from shared.pillow import use_pixel_limit

log = get_logger("services.gateway")


def main() -> int:
    settings = settings_or_exit()
    configure_logging("gateway", settings.log_level, settings.log_format)
    use_pixel_limit(settings.max_image_pixels)
    try:
        app = create_app(settings)
    except (ConfigError, StateError) as e:  # STATE_DIR not writable, a bucket missing
        return config_error(e)
    settle_heap()  # the app and its schemas, built: out of the collector's sight
    log.info("gateway_listening", host=settings.gateway_host, port=settings.gateway_port)
    # log_config=None: uvicorn's own lines go through our structlog set-up; one line per
    # accepted or rejected job replaces the access log.
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
