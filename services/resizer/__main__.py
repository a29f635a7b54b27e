"""`python -m services.resizer`: the image jobs (`resize`), from their task queues."""

from __future__ import annotations

from functools import partial

from services.resizer.handler import resize_job
from shared.config import settings_or_exit
from shared.heap import settle_heap
from shared.jobtypes import RESIZE
from shared.log import configure_logging
from shared.pillow import use_pixel_limit
from shared.worker import run_worker


def main() -> int:
    settings = settings_or_exit()
    configure_logging("resizer", settings.log_level, settings.log_format)
    use_pixel_limit(settings.max_image_pixels)
    # Each job type this service runs, bound to its handler: one line each.
    handlers = {
        RESIZE.name: partial(resize_job, limits=RESIZE.limits(settings)),
    }
    settle_heap()
    return run_worker(settings, service="resizer", handlers=handlers)


if __name__ == "__main__":
    raise SystemExit(main())
