"""Every setting, read from the environment once into a frozen object that is passed down.

No other module reads `os.environ`. A bad value fails at start with one clear line
(`ConfigError: SMTP_PORT must be an integer, got 'abc'`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from shared.errors import ConfigError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@localhost:5672/%2F"
    amqp_heartbeat_s: int = 30
    namespace: str = ""
    blob_dir: Path = Path("var/blobs")
    # Shared state (idempotency keys, accepted jobs, the sent-mail ledger): SQLite files here.
    state_dir: Path = Path("var/state")
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    mail_from: str = "jobsuite@localhost"
    audit_dir: Path = Path("var/audit")
    audit_url: str = "http://localhost:8081"
    gateway_port: int = 8080
    log_level: str = "info"
    log_format: str = "console"
    max_upload_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_output_side: int = 10_000
    # Transient failures wait these many ms before attempt 2, 3, …; after the last, dead letters.
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000)
    # A job redelivered this many times (its worker died each time) is dead-lettered.
    max_deliveries: int = 5
    # Jobs a task queue holds before the broker refuses more (the gateway answers 503);
    # 0: no limit. Changing it on an existing queue needs the queue deleted first.
    task_queue_max_length: int = 0
    # Seconds a job may run before the worker settles it as a passing fault (retried) and
    # interrupts it; keep it below RabbitMQ's consumer_timeout and compose's stop grace.
    job_time_limit_s: int = 300
    gateway_url: str = "http://localhost:8080"
    audit_port: int = 8081
    audit_retention_days: int = 30
    audit_segment_bytes: int = 64 * 1024 * 1024
    # The audit read API's address: loopback here; 0.0.0.0 in containers (compose sets it).
    audit_host: str = "127.0.0.1"
    mailsink_smtp_port: int = 1025
    mailsink_http_port: int = 8025
    mailsink_dir: Path = Path("var/mail")
    max_recipients: int = 50
    # Seconds for the mailer's SMTP connect and each command; a timeout is a passing fault.
    smtp_timeout_s: int = 30
    # All attachments of one mail together, before encoding.
    max_mail_bytes: int = 25 * 1024 * 1024
    # 127.0.0.1 keeps the test mail server off the network; containers set 0.0.0.0.
    mailsink_host: str = "127.0.0.1"
    # "CODE[:TIMES[:STAGE]]": the sink answers CODE to the next TIMES transactions (every one
    # when TIMES is left out) at MAIL, RCPT or DATA (the default), like Mailpit's chaos mode.
    mailsink_chaos: str = ""
    max_pdf_pages: int = 200
    max_table_rows: int = 5_000
    max_pdf_images: int = 100
    gateway_host: str = "127.0.0.1"  # 0.0.0.0 in containers (compose sets it)
    # Threads that each own one confirmed publishing connection of the gateway (one confirm
    # at a time each: more threads, more jobs in flight).
    gateway_publishers: int = 16
    # The RabbitMQ management HTTP API; empty: http://<AMQP host>:15672 with the AMQP credentials.
    management_url: str = ""

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_ms) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        default = cls()
        return cls(
            amqp_url=reader.get("AMQP_URL", str, default.amqp_url),
            amqp_heartbeat_s=reader.get("AMQP_HEARTBEAT", _positive_int, default.amqp_heartbeat_s),
            namespace=reader.get("JOBSUITE_NAMESPACE", _namespace, default.namespace),
            blob_dir=reader.get("BLOB_DIR", Path, default.blob_dir),
            state_dir=reader.get("STATE_DIR", Path, default.state_dir),
            smtp_host=reader.get("SMTP_HOST", str, default.smtp_host),
            smtp_port=reader.get("SMTP_PORT", _port, default.smtp_port),
            smtp_user=reader.get("SMTP_USER", str, default.smtp_user),
            smtp_password=reader.get("SMTP_PASSWORD", str, default.smtp_password),
            smtp_starttls=reader.get("SMTP_STARTTLS", _bool, default.smtp_starttls),
            mail_from=reader.get("MAIL_FROM", str, default.mail_from),
            audit_dir=reader.get("AUDIT_DIR", Path, default.audit_dir),
            audit_url=reader.get("AUDIT_URL", str, default.audit_url),
            gateway_port=reader.get("GATEWAY_PORT", _port, default.gateway_port),
            log_level=reader.get("LOG_LEVEL", _choice(LOG_LEVELS), default.log_level),
            log_format=reader.get(
                "LOG_FORMAT", _choice(LOG_FORMATS), "console" if sys.stdout.isatty() else "json"
            ),
            max_upload_bytes=reader.get(
                "MAX_UPLOAD_BYTES", _positive_int, default.max_upload_bytes
            ),
            max_image_pixels=reader.get(
                "MAX_IMAGE_PIXELS", _positive_int, default.max_image_pixels
            ),
            max_output_side=reader.get("MAX_OUTPUT_SIDE", _positive_int, default.max_output_side),
            retry_delays_ms=reader.get("RETRY_DELAYS_MS", _delays, default.retry_delays_ms),
            max_deliveries=reader.get("MAX_DELIVERIES", _positive_int, default.max_deliveries),
            job_time_limit_s=reader.get("JOB_TIME_LIMIT", _positive_int, default.job_time_limit_s),
            task_queue_max_length=reader.get(
                "TASK_QUEUE_MAX_LENGTH", _non_negative_int, default.task_queue_max_length
            ),
            gateway_url=reader.get("GATEWAY_URL", str, default.gateway_url),
            audit_port=reader.get("AUDIT_PORT", _port, default.audit_port),
            audit_retention_days=reader.get(
                "AUDIT_RETENTION_DAYS", _positive_int, default.audit_retention_days
            ),
            audit_segment_bytes=reader.get(
                "AUDIT_SEGMENT_BYTES", _positive_int, default.audit_segment_bytes
            ),
            audit_host=reader.get("AUDIT_HOST", str, default.audit_host),
            mailsink_smtp_port=reader.get("MAILSINK_SMTP_PORT", _port, default.mailsink_smtp_port),
            mailsink_http_port=reader.get("MAILSINK_HTTP_PORT", _port, default.mailsink_http_port),
            mailsink_dir=reader.get("MAILSINK_DIR", Path, default.mailsink_dir),
            max_recipients=reader.get("MAX_RECIPIENTS", _positive_int, default.max_recipients),
            smtp_timeout_s=reader.get("SMTP_TIMEOUT", _positive_int, default.smtp_timeout_s),
            max_mail_bytes=reader.get("MAX_MAIL_BYTES", _positive_int, default.max_mail_bytes),
            mailsink_host=reader.get("MAILSINK_HOST", str, default.mailsink_host),
            mailsink_chaos=reader.get("MAILSINK_CHAOS", _chaos_spec, default.mailsink_chaos),
            max_pdf_pages=reader.get("MAX_PDF_PAGES", _positive_int, default.max_pdf_pages),
            max_table_rows=reader.get("MAX_TABLE_ROWS", _positive_int, default.max_table_rows),
            max_pdf_images=reader.get("MAX_PDF_IMAGES", _positive_int, default.max_pdf_images),
            gateway_host=reader.get("GATEWAY_HOST", str, default.gateway_host),
            gateway_publishers=reader.get(
                "GATEWAY_PUBLISHERS", _positive_int, default.gateway_publishers
            ),
            management_url=reader.get("MANAGEMENT_URL", str, default.management_url),
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.env.get(name)
        if raw is None:
            return default
        try:
            return parse(raw.strip())
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{name} {e}, got {raw!r}") from None


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None


def _positive_int(raw: str) -> int:
    value = _integer(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = _integer(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


def _port(raw: str) -> int:
    value = _positive_int(raw)
    if value > 65535:
        raise ValueError("must be a port number (1-65535)")
    return value


def _bool(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("must be true or false")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return raw.lower()

    return parse


def _namespace(raw: str) -> str:
    if raw and not all(c.isalnum() or c in "-_" for c in raw):
        raise ValueError("may hold only letters, digits, '-' and '_'")
    return raw


def _delays(raw: str) -> tuple[int, ...]:
    try:
        delays = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError("must be a comma-separated list of milliseconds") from None
    if not delays or any(d <= 0 for d in delays):
        raise ValueError("must list at least one positive delay in milliseconds")
    return delays


_CHAOS_SPEC = re.compile(r"^[45]\d\d(:([1-9]\d*)?)?(:(mail|rcpt|data))?$")


def _chaos_spec(raw: str) -> str:
    if raw and not _CHAOS_SPEC.match(raw.lower()):
        raise ValueError(
            "must look like CODE[:TIMES[:STAGE]], e.g. 451:2:rcpt, or 550::mail for every "
            "transaction (CODE 4xx or 5xx, STAGE mail, rcpt or data)"
        )
    return raw.lower()


def settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings for a service's start, or exit with one clear line."""
    try:
        return Settings.from_env(environ)
    except ConfigError as e:
        print(f"jobsuite: configuration error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
