"""`python -m services.audit`: record every event in the hash-chained log, serve the read API."""

from __future__ import annotations

from services.audit.consumer import SERVICE
from services.audit.service import run
from shared.config import settings_or_exit
from shared.log import configure_logging


def main() -> int:
    settings = settings_or_exit()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    return run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
