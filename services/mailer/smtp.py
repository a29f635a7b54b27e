"""Talking SMTP: the `SmtpSender` the handler is given, its smtplib implementation, and how
every SMTP outcome becomes a job outcome.

- connection refused, timeouts, a dropped connection, 4xx answers: TransientJobError (the
  runner retries with back-off);
- 5xx answers, a server without STARTTLS when it is required, a bad certificate:
  PermanentJobError;
- every recipient refused: transient if any refusal was 4xx, else permanent;
- some recipients refused: the server accepted the mail for the others, so it counts as sent
  (a retry would send it to them twice); `send` returns the refusals and the handler reports
  them in the job's `sent.json` output and its log.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from shared.config import Settings
from shared.errors import JobError, PermanentJobError, TransientJobError

Refusals = dict[str, tuple[int, str]]
"""Recipients the server refused while accepting the mail for the others: code and text."""


class SmtpSession(Protocol):
    def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> Refusals:
        """Return once the server has accepted the message (its 250 to DATA)."""
        ...


class SmtpSender(Protocol):
    def session(self) -> AbstractContextManager[SmtpSession]:
        """Connect (and STARTTLS, log in); leaving the block says QUIT."""
        ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    timeout_s: float = 30
    starttls: bool = False
    user: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            timeout_s=settings.smtp_timeout,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=settings.smtp_password,
        )


class SmtplibSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @contextmanager
    def session(self) -> Iterator[SmtpSession]:
        c = self.config
        with smtp_errors_as_job_errors():
            # local_hostname: the default (socket.getfqdn) can stall on reverse DNS.
            smtp = smtplib.SMTP(c.host, c.port, socket.gethostname(), timeout=c.timeout_s)
        try:
            with smtp_errors_as_job_errors():
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.user:
                    smtp.login(c.user, c.password)
            yield _SmtplibSession(smtp)
        finally:
            _quit_quietly(smtp)


class _SmtplibSession:
    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp

    def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> Refusals:
        with smtp_errors_as_job_errors():
            refused = self.smtp.send_message(message, sender, list(recipients))
        return {addr: (code, _text(reply)) for addr, (code, reply) in refused.items()}


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    """The mail is accepted or the session failed already: QUIT's own answer changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@contextmanager
def smtp_errors_as_job_errors() -> Iterator[None]:
    try:
        yield
    except (smtplib.SMTPException, OSError) as e:
        raise job_error_for(e) from e


def job_error_for(error: smtplib.SMTPException | OSError) -> JobError:
    """The job outcome of one SMTP failure (see the module docstring)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return _all_refused(error.recipients)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return PermanentJobError(f"SMTP server: {error}", kind="smtp_unsupported")
    if isinstance(error, smtplib.SMTPResponseException):
        return _by_code(error.smtp_code, _text(error.smtp_error))
    if isinstance(error, smtplib.SMTPServerDisconnected):
        # smtplib reports a read that timed out as a disconnect; the timeout is its context.
        if isinstance(error.__context__, TimeoutError):
            return TransientJobError(f"SMTP server timed out: {error}", kind="smtp_timeout")
        return TransientJobError(f"SMTP server closed the connection: {error}", kind="smtp_down")
    if isinstance(error, ssl.SSLCertVerificationError):
        return PermanentJobError(f"SMTP server's certificate: {error}", kind="smtp_tls")
    if isinstance(error, TimeoutError):
        return TransientJobError(f"SMTP server timed out: {error}", kind="smtp_timeout")
    if isinstance(error, OSError):
        return TransientJobError(f"SMTP server unreachable: {error}", kind="smtp_down")
    return TransientJobError(f"SMTP error: {error}", kind="smtp_error")


def _by_code(code: int, text: str) -> JobError:
    message = f"SMTP server answered {code} {text}".rstrip()
    if 500 <= code < 600:
        return PermanentJobError(message, kind="smtp_5xx")
    return TransientJobError(message, kind="smtp_4xx" if 400 <= code < 500 else "smtp_error")


def _all_refused(refusals: dict[str, tuple[int, bytes]]) -> JobError:
    detail = "; ".join(f"{addr}: {code} {_text(reply)}" for addr, (code, reply) in refusals.items())
    message = f"SMTP server refused every recipient: {detail}"
    if any(400 <= code < 500 for code, _ in refusals.values()):
        return TransientJobError(message, kind="smtp_4xx")
    return PermanentJobError(message, kind="smtp_5xx")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
