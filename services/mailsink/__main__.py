"""`python -m services.mailsink`: the local test SMTP server with its HTTP view (Mailpit's role)."""

from __future__ import annotations

from services.mailsink.server import run
from shared.config import settings_or_exit
from shared.heap import settle_heap
from shared.log import configure_logging


def main() -> int:
    settings = settings_or_exit()
    configure_logging("mailsink", settings.log_level, settings.log_format)
    settle_heap()
    return run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
