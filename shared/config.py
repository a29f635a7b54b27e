"""Every setting, read from the environment once into a frozen object that is passed down.

Each setting is declared once, below: its variable, default, parser and the line the docs give
it. `from_env` reads them all, and docs/configuration.md is generated from the same
declarations (`make docs`, shared/config_docs.py). No other module reads `os.environ`.
A bad value fails at start with one clear line (`SMTP_PORT must be an integer, got 'abc'`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import Field, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from shared import config_parsers as parse
from shared.amqp_url import node_urls
from shared.blob_location import BlobLocation, blob_location, parse_blob_store
from shared.config_fields import declared, setting
from shared.errors import ConfigError
from shared.exit_codes import EXIT_CONFIG
from shared.mailpolicy import RESERVED_TEST_DOMAINS

T = TypeVar("T")

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _console_on_a_terminal() -> str:
    return "console" if sys.stdout.isatty() else "json"


def _checkout_or_cwd() -> Path:
    """Run from a source checkout (`make run`, the editable install in `.venv`), the data lives
    in that checkout whatever folder a command is typed in; installed as a package (the Docker
    image, whose folders are absolute), in the current folder."""
    tree = Path(__file__).resolve().parents[1]
    if (tree / "Procfile").is_file() and (tree / "pyproject.toml").is_file():
        return tree
    return Path.cwd()


# The folders a relative value of which is taken under JOBSUITE_HOME.
HOME_FOLDERS = ("blob_dir", "state_dir", "mailsink_dir", "audit_dir")


@dataclass(frozen=True)
class Settings:
    """Every setting. `Settings()` holds the defaults; `Settings.from_env()` reads them."""

    # The broker and the names on it.
    amqp_url: str = setting(
        "AMQP_URL",
        "amqp://guest:guest@localhost:5672/%2F",
        parse.amqp_url,
        "the broker, `amqp://user:pass@host:port/vhost` (`amqps://` for TLS; `%2F` is the"
        " vhost `/`); several nodes comma-separated, tried in order, a later one full or just"
        " `host[:port]` (the rest, and the port when not given, taken from the first), e.g."
        " `amqp://u:p@node1:5672/vh,node2,node3:5673`; a comma in a password is `%2C`",
    )
    amqp_heartbeat: int = setting(
        "AMQP_HEARTBEAT", 30, parse.positive_int, "heartbeat interval, seconds"
    )
    # The one variable not named after its field: a bare NAMESPACE would collide with other
    # tools' variables.
    namespace: str = setting(
        "JOBSUITE_NAMESPACE",
        "",
        parse.namespace,
        "prefix for every exchange and queue (letters, digits, `-` and `_`)",
    )
    broker_users: tuple[tuple[str, str], ...] = setting(
        "BROKER_USERS",
        (),
        parse.broker_users,
        "`role:password` pairs (spaces between) that `jobsuite broker-users` gives each"
        " service its own least-privilege broker user with (roles: gateway, resizer, renderer,"
        " mailer, audit, dlq; the user is named after the role); compose's init step",
        shown="unset",
        secret=True,
    )
    management_url: str = setting(
        "MANAGEMENT_URL",
        "",
        parse.text,
        "RabbitMQ management API for `jobsuite queues` (with the AMQP credentials)",
        shown="`http://<AMQP host>:15672`",
    )

    # Jobs: retries, dead letters, time and queue limits.
    retry_delays_ms: tuple[int, ...] = setting(
        "RETRY_DELAYS_MS",
        (1_000, 5_000, 30_000, 120_000),
        parse.delays,
        "back-off steps for transient failures: milliseconds before attempt 2, 3, …;"
        " after the last, the job is dead-lettered",
    )
    disk_full_retries: int = setting(
        "DISK_FULL_RETRIES",
        30,
        parse.non_negative_int,
        "retries of a job that met a full disk (ENOSPC, EDQUOT), each after the longest"
        " RETRY_DELAYS_MS step and not counted against the job's attempts; past them it"
        " retries as for any passing fault",
    )
    max_deliveries: int = setting(
        "MAX_DELIVERIES",
        5,
        parse.positive_int,
        "redeliveries (its worker died each time) before a crashing job is dead-lettered",
    )
    job_time_limit: int = setting(
        "JOB_TIME_LIMIT",
        300,
        parse.positive_int,
        "seconds a job may run; then it is interrupted and retried as a passing fault (a thread"
        " that cannot be interrupted ends its process, exit 70, for the supervisor to restart);"
        " keep it below RabbitMQ's consumer_timeout and compose's stop grace period",
        shown="`300` (`100` in compose)",
    )
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY",
        1,
        parse.positive_int,
        "jobs a worker process runs at once, each on its own connection, consumer channel"
        " (prefetch 1) and job thread, every guarantee per job; for work that waits (mail"
        " over SMTP) more than it computes",
    )
    max_output_bytes: int = setting(
        "MAX_OUTPUT_BYTES",
        256 * 1024 * 1024,
        parse.positive_int,
        "bytes one job may write, all its outputs together; a job going over fails for good"
        " and leaves no outputs",
        shown="`268435456` (256 MiB)",
    )
    task_queue_max_length: int = setting(
        "TASK_QUEUE_MAX_LENGTH",
        0,
        parse.non_negative_int,
        "jobs a task queue holds; when full the gateway answers 503 (delete the queue to"
        " change it)",
        shown="`0` (no limit)",
    )

    # Where the services keep files.
    jobsuite_home: Path = setting(
        "JOBSUITE_HOME",
        Path("."),
        Path,
        "the folder a relative BLOB_DIR, STATE_DIR, AUDIT_DIR or MAILSINK_DIR (the defaults"
        " too) is taken in, so that every service and every `jobsuite` command finds the same"
        " files whatever the working folder",
        shown="the source checkout the code runs from (the folder with its `Procfile`), else"
        " the current folder",
        default_from=_checkout_or_cwd,
    )
    blob_dir: Path = setting(
        "BLOB_DIR", Path("var/blobs"), Path, "the shared blob store folder (BLOB_STORE empty)"
    )
    blob_store: str = setting(
        "BLOB_STORE",
        "",
        parse_blob_store,
        "where blobs live: empty for the folder BLOB_DIR, `file:///path` for another folder,"
        " `s3://bucket[/prefix]` for an S3-compatible object store (the bucket must exist;"
        " docs/operations.md)",
    )
    blob_retention_days: int = setting(
        "BLOB_RETENTION_DAYS",
        0,
        parse.non_negative_int,
        "days a job's inputs and outputs are kept in the blob store: the gateway deletes older"
        " ones every hour (`jobsuite blobs prune` on demand; the audit keeps its record)",
        shown="0 (kept forever)",
    )
    s3_endpoint_url: str = setting(
        "S3_ENDPOINT_URL",
        "",
        parse.text,
        "the S3 API's URL for a store other than AWS (MinIO, Ceph, `https://s3.example:9000`)",
        shown="(none: AWS)",
    )
    s3_ca_bundle: str = setting(
        "S3_CA_BUNDLE",
        "",
        parse.text,
        "a CA bundle file to check an `https` S3_ENDPOINT_URL's certificate with",
        shown="(none: the system's)",
    )
    s3_create_bucket: bool = setting(
        "S3_CREATE_BUCKET",
        False,
        parse.boolean,
        "`true`: a service creates BLOB_STORE's bucket when it does not exist (development);"
        " else a missing bucket stops it at start",
    )
    aws_access_key_id: str = setting(
        "AWS_ACCESS_KEY_ID",
        "",
        parse.text,
        "S3 credentials: the access key (with AWS_SECRET_ACCESS_KEY; both may come from `*_FILE`)",
        shown="(none: boto3's own chain, e.g. an instance role)",
        secret=True,
    )
    aws_secret_access_key: str = setting(
        "AWS_SECRET_ACCESS_KEY", "", parse.text, "S3 credentials: the secret key", secret=True
    )
    aws_region: str = setting(
        "AWS_REGION",
        "",
        parse.text,
        "the S3 region (`us-east-1`, or what the S3-compatible store expects)",
        shown="(none: boto3's default)",
    )
    state_dir: Path = setting(
        "STATE_DIR",
        Path("var/state"),
        Path,
        "SQLite files of the shared state (idempotency keys, the mailer's send-once ledger,"
        " API keys, audit checkpoints) when STATE_URL is empty; never inside BLOB_DIR or"
        " AUDIT_DIR",
    )
    state_url: str = setting(
        "STATE_URL",
        "",
        parse.state_url,
        "`postgresql://user:pass@host:port/db` (or `postgres://`): the shared state in"
        " PostgreSQL instead of STATE_DIR, and the audit's read model instead of its file in"
        " AUDIT_DIR, for replicas on several hosts; the URL goes to"
        " psycopg as it is, so its options (`?sslmode=verify-full&sslrootcert=…`,"
        " `connect_timeout`, `keepalives_idle`, `tcp_user_timeout`) apply over jobsuite's"
        " defaults (5 s to connect; keepalives after 10 s idle, 3 probes 5 s apart; 20 s for"
        " unacknowledged data); its password is masked in logs",
        shown="empty (SQLite files under STATE_DIR)",
        secret=True,
    )

    # Who may call: API keys (`jobsuite keys`, docs/operations.md).
    auth_disabled: bool = setting(
        "AUTH_DISABLED",
        False,
        parse.boolean,
        "`true` turns every key check off (gateway, audit API, mail view): only for a trusted"
        " single-user machine; logged as a warning at start",
    )
    jobsuite_api_key: str = setting(
        "JOBSUITE_API_KEY",
        "",
        parse.text,
        "the key the CLI sends to the gateway and the audit API",
        shown="the key file `~/.config/jobsuite/<namespace or default>.key`",
        secret=True,
    )
    audit_api_key: str = setting(
        "AUDIT_API_KEY",
        "",
        parse.text,
        "the key the gateway sends to the audit read API: an admin key from `jobsuite keys`,"
        " or a shared secret set on the audit service too, which it then takes as an admin"
        " caller `gateway-reader` (what compose does, from .env)",
        secret=True,
    )

    # Logging.
    log_level: str = setting(
        "LOG_LEVEL",
        "info",
        parse.choice(LOG_LEVELS),
        "logging: `debug`, `info`, `warning` or `error`",
    )
    log_format: str = setting(
        "LOG_FORMAT",
        "console",
        parse.choice(LOG_FORMATS),
        "logging: one JSON object a line, or `console` for people",
        shown="`json` (`console` on a terminal and under `make run`)",
        default_from=_console_on_a_terminal,
    )

    # Metrics (Prometheus, docs/operations.md#metrics): the gateway and the audit serve
    # /metrics on their own HTTP ports; a worker serves it only on METRICS_PORT.
    metrics_port: int | None = setting(
        "METRICS_PORT",
        None,
        parse.optional_port,
        "a worker's Prometheus `/metrics` port (resizer, renderer, mailer); unset or empty:"
        " no listener. A port in use stops the worker with one line (exit 2). Compose sets"
        " `9100`",
        shown="unset (no listener)",
    )
    metrics_host: str = setting(
        "METRICS_HOST",
        "127.0.0.1",
        parse.text,
        "where a worker's `/metrics` listens (compose sets `0.0.0.0`); open to anyone who"
        " can reach it, and it shows only counts by job type and outcome",
    )

    # Traces (OpenTelemetry, docs/operations.md#traces): spans exported over OTLP/HTTP only
    # when the endpoint is set; the SDK reads its other OTEL_* variables itself.
    otel_exporter_otlp_endpoint: str = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        parse.text,
        "where spans go (OTLP/HTTP protobuf, `/v1/traces` added), e.g."
        " `http://collector:4318`; unset or empty: no spans, and the OpenTelemetry SDK is"
        " never imported",
        shown="unset (no spans)",
    )
    otel_service_name: str = setting(
        "OTEL_SERVICE_NAME",
        "",
        parse.text,
        "the spans' `service.name`; unset or empty: the service's own (`gateway`, `resizer`, …)",
        shown="unset (the service's name)",
    )

    # Every HTTP service (gateway, audit read API, mail view): shared/http_guard.py.
    allowed_hosts: tuple[str, ...] = setting(
        "ALLOWED_HOSTS",
        ("localhost", "127.0.0.1", "::1"),
        parse.host_names,
        "comma-separated host names the HTTP services answer (the `Host` header, port aside);"
        " any other is 400 `host_not_allowed` (DNS rebinding). Compose adds the service names",
        shown="`localhost,127.0.0.1,::1`",
    )
    cors_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS",
        (),
        parse.origins,
        "comma-separated web origins (`https://app.example:8443`) whose pages may call the"
        " HTTP services: their preflights are answered and their POSTs taken; no CORS for"
        " any other origin, and its state-changing requests are 403 `origin_not_allowed`",
        shown="empty (none)",
    )

    # The gateway.
    gateway_host: str = setting(
        "GATEWAY_HOST",
        "127.0.0.1",
        parse.text,
        "where the gateway listens (compose sets `0.0.0.0`)",
    )
    gateway_port: int = setting("GATEWAY_PORT", 8080, parse.port, "the gateway's port")
    gateway_url: str = setting(
        "GATEWAY_URL", "http://localhost:8080", parse.text, "where the CLI finds the gateway"
    )
    gateway_publishers: int = setting(
        "GATEWAY_PUBLISHERS",
        1,
        parse.positive_int,
        "the gateway's confirmed publishing connections, all on its event loop: requests take"
        " them in turn, many in flight on each, every request awaiting its own job's confirm;"
        " a lost one is reopened at once and its requests retried on a fresh one. A second"
        " keeps a spare connection",
    )
    gateway_workers: int = setting(
        "GATEWAY_WORKERS",
        1,
        parse.positive_int,
        "gateway processes serving the one port, for when one process is the ceiling (about a"
        " core's worth of accepted jobs): they share each key's submission rate and count"
        " into one `/metrics`; a worker that dies is replaced",
    )
    result_redirect: bool = setting(
        "RESULT_REDIRECT",
        False,
        parse.boolean,
        "`true`: with an S3 BLOB_STORE, a result download answers 307 to a presigned URL of"
        " the object (valid 5 minutes), so the bytes go from the store to the client, not"
        " through the gateway; the client must reach S3_ENDPOINT_URL. No effect on a folder",
    )
    max_upload_bytes: int = setting(
        "MAX_UPLOAD_BYTES", 25 * 1024 * 1024, parse.positive_int, "larger uploads get 413"
    )

    # Image and PDF limits.
    max_image_pixels: int = setting(
        "MAX_IMAGE_PIXELS",
        50_000_000,
        parse.positive_int,
        "pixels of one image, input or output; larger ones are refused",
    )
    max_output_side: int = setting(
        "MAX_OUTPUT_SIDE", 10_000, parse.positive_int, "pixels of a resized image's longer side"
    )
    max_pdf_pages: int = setting("MAX_PDF_PAGES", 200, parse.positive_int, "pages of one PDF")
    max_table_rows: int = setting(
        "MAX_TABLE_ROWS", 5_000, parse.positive_int, "rows of one table in a PDF"
    )
    max_pdf_images: int = setting("MAX_PDF_IMAGES", 100, parse.positive_int, "images in one PDF")

    # The mailer.
    smtp_host: str = setting("SMTP_HOST", "localhost", parse.text, "the mailer's SMTP server")
    smtp_port: int = setting("SMTP_PORT", 1025, parse.port, "its port")
    smtp_starttls: bool = setting(
        "SMTP_STARTTLS", False, parse.boolean, "relay login: upgrade the connection with STARTTLS"
    )
    smtp_user: str = setting("SMTP_USER", "", parse.text, "relay login: user")
    smtp_password: str = setting(
        "SMTP_PASSWORD", "", parse.text, "relay login: password", secret=True
    )
    smtp_timeout: int = setting(
        "SMTP_TIMEOUT",
        30,
        parse.positive_int,
        "seconds for the SMTP connect and each command; a timeout is a passing fault",
    )
    mail_from: str = setting(
        "MAIL_FROM", "jobsuite@localhost", parse.text, "the one sender address"
    )
    max_recipients: int = setting(
        "MAX_RECIPIENTS", 50, parse.positive_int, "recipients of one mail (to, cc and bcc)"
    )
    max_mail_bytes: int = setting(
        "MAX_MAIL_BYTES",
        25 * 1024 * 1024,
        parse.positive_int,
        "bytes of one mail's text, html and attachments together, before encoding (text and"
        " html over it are a 422 at the gateway)",
    )
    max_attachments: int = setting(
        "MAX_ATTACHMENTS",
        20,
        parse.positive_int,
        "job ids in one mail's `attachments` (each id listed once; the files they bring are"
        " bounded by MAX_MAIL_BYTES)",
    )
    mail_allowed_domains: tuple[str, ...] = setting(
        "MAIL_ALLOWED_DOMAINS",
        RESERVED_TEST_DOMAINS,
        parse.mail_domains,
        "recipient domains mail may go to, comma-separated: `example.com` (exactly it),"
        " `*.example.com` (every name under it, not itself), `*` (any domain), an IP address"
        " (only listed ones); unset or empty: the reserved test names only",
        shown="`example`, `example.com`, `example.net`, `example.org`, `test`, `invalid`,"
        " `localhost`, each with every name under it",
    )

    # The mail sink (a test mail server; it keeps off the network unless told).
    mailsink_host: str = setting(
        "MAILSINK_HOST", "127.0.0.1", parse.text, "where the sink listens (compose: `0.0.0.0`)"
    )
    mailsink_smtp_port: int = setting(
        "MAILSINK_SMTP_PORT", 1025, parse.port, "the sink's SMTP port"
    )
    mailsink_http_port: int = setting(
        "MAILSINK_HTTP_PORT", 8025, parse.port, "the sink's HTTP port"
    )
    mailsink_dir: Path = setting("MAILSINK_DIR", Path("var/mail"), Path, "the sink's Maildir")
    mailsink_max_messages: int = setting(
        "MAILSINK_MAX_MESSAGES",
        500,
        parse.non_negative_int,
        "the most messages the sink keeps, the oldest going first (as Mailpit's"
        " MP_MAX_MESSAGES); 0 keeps every one",
    )
    mailsink_chaos: str = setting(
        "MAILSINK_CHAOS",
        "",
        parse.chaos_spec,
        "`CODE[:TIMES[:STAGE]]`: the sink answers CODE to the next TIMES transactions (every"
        " one when TIMES is left out) at MAIL, RCPT or DATA (the default), like Mailpit's"
        " chaos mode",
    )
    mailsink_chaos_api: bool = setting(
        "MAILSINK_CHAOS_API",
        False,
        parse.boolean,
        "serve `/chaos` (set a fault over HTTP); off, it is a 404",
    )
    mailsink_ui_auth: str = setting(
        "MAILSINK_UI_AUTH",
        "",
        parse.user_password,
        "`user:password`: HTTP Basic on every page and API route of the sink but `/healthz`,"
        " as Mailpit's MP_UI_AUTH (compose sets it); empty: open, the sink listens on loopback",
        secret=True,
    )

    # The audit service.
    audit_dir: Path = setting(
        "AUDIT_DIR",
        Path("var/audit"),
        Path,
        "the audit log, and its read model when STATE_URL is empty",
    )
    audit_host: str = setting(
        "AUDIT_HOST",
        "127.0.0.1",
        parse.text,
        "where the audit read API listens (compose sets `0.0.0.0`)",
    )
    audit_port: int = setting("AUDIT_PORT", 8081, parse.port, "the audit read API's port")
    audit_url: str = setting(
        "AUDIT_URL",
        "http://localhost:8081",
        parse.text,
        "where the gateway and the CLI find the audit read API",
    )
    audit_segment_bytes: int = setting(
        "AUDIT_SEGMENT_BYTES", 64 * 1024 * 1024, parse.positive_int, "log rotation: segment size"
    )
    audit_retention_days: int = setting(
        "AUDIT_RETENTION_DAYS", 30, parse.positive_int, "days the audit log is kept"
    )
    audit_signing_key: str = setting(
        "AUDIT_SIGNING_KEY",
        "",
        parse.signing_key,
        "secret (32 characters or more) the audit service signs its checkpoints with"
        " (HMAC-SHA256), and `jobsuite audit verify` checks them with; never kept in"
        " AUDIT_DIR or STATE_DIR",
        shown="unset (checkpoints unsigned)",
        secret=True,
    )
    audit_publishers: parse.PublisherRights = setting(
        "AUDIT_PUBLISHERS",
        (),
        parse.publishers,
        "broker user → the events it may publish, `user=event,event;user=event` (`*`: every"
        " event), e.g. `gateway=job.submitted,job.rejected;resizer=job.started,job.succeeded`;"
        " an event from anyone else is recorded flagged `refused` and does not change its"
        " job's status; unset: every event is believed and its publisher only recorded",
        shown="unset",
    )
    audit_dlq_amqp_url: str = setting(
        "AUDIT_DLQ_AMQP_URL",
        "",
        lambda raw: parse.amqp_url(raw) if raw else "",
        "the broker as the console's dead-letters page reaches it (list, replay, purge) and"
        " its queues page: the `dlq` broker user in compose, as `jobsuite dlq` runs",
        shown="AMQP_URL",
        secret=True,
    )

    @property
    def blob_location(self) -> BlobLocation:
        """Where the blob store is: BLOB_STORE, or the folder BLOB_DIR when it is empty."""
        return blob_location(self.blob_store, self.blob_dir)

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """Each broker node's full URL, in the order AMQP_URL lists them."""
        return node_urls(self.amqp_url)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_ms) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        for name, instead in _REMOVED.items():
            if name in env:
                raise ConfigError(f"{name} is no longer read: {instead}")
        given = cls(**{f.name: _read(f, env) for f in fields(cls)})
        settings = _under_home(given)
        _check_state_dir(settings, given)
        return settings


def _read(f: Field[Any], env: Mapping[str, str]) -> Any:
    d = declared(f)
    raw = _given(d.env, env)
    if raw is None:
        return d.default_from() if d.default_from else f.default
    try:
        return d.parse(raw.strip())
    except (ValueError, TypeError) as e:
        got = "" if f.repr else " (a secret: its value is not shown)"
        raise ConfigError(f"{d.env} {e}{got or f', got {_without_password(raw)!r}'}") from None


def _given(name: str, env: Mapping[str, str]) -> str | None:
    """The variable's value, or the content of the file `<name>_FILE` names (Docker and
    Kubernetes secrets are files; the official images read `*_FILE` the same way)."""
    path = env.get(f"{name}_FILE")
    if path is None:
        return env.get(name)
    if name in env:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{name}_FILE: cannot read {path!r}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}_FILE: {path!r} is not UTF-8 text") from None


# "user:password@" in a URL, as typed (with or without a scheme).
_PASSWORD_IN_URL = re.compile(r"([^\s/:@]+:)[^\s/@]*@")


def _without_password(raw: str) -> str:
    """The value as typed, a URL's password masked: an error line is no place for it."""
    return _PASSWORD_IN_URL.sub(r"\1***@", raw)


# Variables of earlier releases that would now be ignored without a word.
_REMOVED = {
    "GATEWAY_DB": "the idempotency keys live in STATE_DIR/submissions.sqlite3",
    "MAILER_LEDGER": "the sent-mail ledger lives in STATE_DIR/sent-mail.sqlite3",
}


def env_name(field_name: str) -> str:
    """The variable a Settings field is read from."""
    return next(declared(f).env for f in fields(Settings) if f.name == field_name)


def _under_home(s: Settings) -> Settings:
    """Relative folders taken in JOBSUITE_HOME, made absolute: a service started in the
    checkout and a command typed anywhere else mean the same files."""
    home = s.jobsuite_home.absolute()
    placed = {name: home / getattr(s, name) for name in HOME_FOLDERS}  # absolute stays so
    return replace(s, jobsuite_home=home, **placed)


def _check_state_dir(s: Settings, given: Settings) -> None:
    # State files are neither blobs nor audit records: whatever sweeps, copies or serves those
    # folders must never meet a live SQLite database. Absolute paths, so `./var/blobs/x` counts;
    # the message names the values as they were set.
    state = s.state_dir.resolve()
    for name in ("blob_dir", "audit_dir"):
        folder: Path = getattr(s, name)
        if state.is_relative_to(folder.resolve()):
            raise ConfigError(
                f"{env_name('state_dir')} must not be inside {env_name(name)}"
                f" ({getattr(given, name)}), got {str(given.state_dir)!r}"
            )
    chosen = s.blob_location.folder
    if chosen is not None and state.is_relative_to(chosen.resolve()):
        raise ConfigError(
            f"{env_name('state_dir')} must not be inside {env_name('blob_store')}"
            f" ({s.blob_store}), got {str(given.state_dir)!r}"
        )


def settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings for a service's start, or exit with one clear line."""
    try:
        return Settings.from_env(environ)
    except ConfigError as e:
        raise SystemExit(config_error(e)) from None


def config_error(error: Exception) -> int:
    """Say on one line why a service cannot start with its configuration; its exit code."""
    print(f"jobsuite: configuration error: {error}", file=sys.stderr)
    return EXIT_CONFIG
