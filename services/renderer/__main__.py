"""`python -m services.renderer`: render PDFs from the `jobs.render` queue."""

from __future__ import annotations

from functools import partial

from services.renderer.fonts import register_fonts
from services.renderer.handler import render_and_collect
from services.renderer.limits import RenderLimits
from shared.config import settings_or_exit
from shared.heap import settle_heap
from shared.jobtypes import RENDER
from shared.log import configure_logging
from shared.pillow import use_pixel_limit
from shared.worker import run_worker


def main() -> int:
    settings = settings_or_exit()
    configure_logging("renderer", settings.log_level, settings.log_format)
    use_pixel_limit(settings.max_image_pixels)
    register_fonts()  # a missing or broken font file fails at start, not on the first job
    # What is loaded by now lives as long as the process: out of the collector's way, so the
    # collection after each document (render_and_collect) scans only what is new.
    settle_heap()
    # Each job type this service runs, bound to its handler: one line each.
    handlers = {
        RENDER.name: partial(render_and_collect, limits=RenderLimits.from_settings(settings)),
    }
    return run_worker(settings, service="renderer", handlers=handlers)


if __name__ == "__main__":
    raise SystemExit(main())
