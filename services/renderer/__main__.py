"""`python -m services.renderer`: render PDFs from the `jobs.render` queue."""

from __future__ import annotations

from functools import partial

from services.renderer.fonts import register_fonts
from services.renderer.handler import render_job
from services.renderer.limits import RenderLimits
from shared.config import settings_or_exit
from shared.jobtypes import RENDER
from shared.log import configure_logging
from shared.pillow import use_pixel_limit
from shared.worker import run_worker


def main() -> int:
    settings = settings_or_exit()
    configure_logging("renderer", settings.log_level, settings.log_format)
    use_pixel_limit(settings.max_image_pixels)
    register_fonts()  # a missing or broken font file fails at start, not on the first job
    # Each job type this service runs, bound to its handler: one line each.
    handlers = {
        RENDER.name: partial(render_job, limits=RenderLimits.from_settings(settings)),
    }
    return run_worker(settings, service="renderer", handlers=handlers)


if __name__ == "__main__":
    raise SystemExit(main())
