"""`python -m services.mailer`: send the mail of each job on the `jobs.mail` queue."""

from __future__ import annotations

from functools import partial

from services.mailer.handler import MailConfig, mail_job
from services.mailer.smtp import SmtpConfig, SmtplibSender
from shared.config import config_error, settings_or_exit
from shared.errors import ConfigError, StateError
from shared.heap import settle_heap
from shared.jobtypes import MAIL
from shared.log import configure_logging, get_logger
from shared.state import open_sent_mail
from shared.worker import run_worker

log = get_logger("services.mailer")


def main() -> int:
    settings = settings_or_exit()
    configure_logging("mailer", settings.log_level, settings.log_format)
    try:
        config = MailConfig.from_settings(settings)
        ledger = open_sent_mail(settings)
    except (ConfigError, StateError) as e:
        return config_error(e)
    smtp = SmtpConfig.from_settings(settings)
    if smtp.user and not smtp.starttls:
        log.warning("smtp_login_without_starttls", host=smtp.host, port=smtp.port)
    handler = partial(mail_job, config=config, sender=SmtplibSender(smtp), ledger=ledger)
    # Each mail leaves reference cycles (the email package's): collected at Python's pace,
    # they hold about 5 MiB less than at the rarer one, and SMTP, not the collector, is
    # where a mail's time goes.
    settle_heap(young_threshold=None)
    try:
        return run_worker(settings, service="mailer", handlers={MAIL.name: handler})
    finally:
        ledger.close()


if __name__ == "__main__":
    raise SystemExit(main())
