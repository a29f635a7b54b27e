"""Shared state: what services must remember across requests, jobs and replicas.

One store per concern, each behind a Protocol, each opened from the settings here:
- submissions (`submissions.py`): the gateway's Idempotency-Key reservations and accepted jobs;
- sent mail (`sent_mail.py`): the mailer's send-once ledger;
- checkpoints (`checkpoints.py`): where the audit log's hash chain stood, signed when
  AUDIT_SIGNING_KEY is set, so truncating or rewriting the log is caught.
- API keys (`keys.py`): who may call the gateway and the audit API (hashes only).

With STATE_URL empty each is a SQLite file under STATE_DIR (never inside BLOB_DIR or
AUDIT_DIR), so the replicas of a service must share that folder on one host; with
STATE_URL=postgresql://… all of them are tables of that PostgreSQL database (`pg_*.py`), for
replicas on any host. The openers are the only place that picks an implementation: no code
outside this package knows which one it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from shared.config import Settings
from shared.log import get_logger
from shared.state.checkpoints import Checkpoint, CheckpointStore, Signer, SqliteCheckpointStore
from shared.state.keys import ApiKey, ApiKeyStore, KeyLimits, SqliteApiKeyStore
from shared.state.pg_url import masked
from shared.state.sent_mail import SendClaim, SentLedger, SentRecord, SqliteSentLedger
from shared.state.sqlite import adopt_legacy_file
from shared.state.submissions import (
    KEY_TTL_S,
    AcceptedJob,
    Claim,
    Reservation,
    SqliteSubmissionLedger,
    SubmissionLedger,
)

__all__ = [
    "API_KEYS_FILE",
    "CHECKPOINTS_FILE",
    "KEY_TTL_S",
    "LEGACY_SENT_MAIL",
    "LEGACY_SUBMISSIONS",
    "SENT_MAIL_FILE",
    "SUBMISSIONS_FILE",
    "AcceptedJob",
    "ApiKey",
    "ApiKeyStore",
    "Checkpoint",
    "CheckpointStore",
    "Claim",
    "KeyLimits",
    "Reservation",
    "SendClaim",
    "SentLedger",
    "SentRecord",
    "Signer",
    "SubmissionLedger",
    "audit_log_id",
    "checkpoints_kept",
    "checkpoints_path",
    "open_api_keys",
    "open_checkpoints",
    "open_sent_mail",
    "open_submissions",
]

SUBMISSIONS_FILE = "submissions.sqlite3"
SENT_MAIL_FILE = "sent-mail.sqlite3"
CHECKPOINTS_FILE = "audit-checkpoints.sqlite3"
API_KEYS_FILE = "api-keys.sqlite3"
# Where releases before STATE_DIR kept these by default: taken over once, on first start, so
# an upgrade keeps the day's Idempotency-Keys and, above all, what was mailed already.
LEGACY_SUBMISSIONS = Path(".gateway") / "gateway.sqlite3"  # under BLOB_DIR
LEGACY_SENT_MAIL = Path("var/mailer/sent.sqlite3")
log = get_logger(__name__)
T = TypeVar("T")


def open_submissions(settings: Settings) -> SubmissionLedger:
    """The gateway's submissions store; StateError when it cannot be opened."""
    if settings.state_url:
        from shared.state.pg_submissions import PostgresSubmissionLedger

        return _opened(PostgresSubmissionLedger.open(settings.state_url), "submissions", settings)
    path = settings.state_dir / SUBMISSIONS_FILE
    _adopt(settings.blob_dir / LEGACY_SUBMISSIONS, path)
    return SqliteSubmissionLedger.open(path)


def open_sent_mail(settings: Settings) -> SentLedger:
    """The mailer's sent-mail ledger; StateError when it cannot be opened."""
    if settings.state_url:
        from shared.state.pg_sent_mail import PostgresSentLedger

        return _opened(PostgresSentLedger.open(settings.state_url), "sent_mail", settings)
    path = settings.state_dir / SENT_MAIL_FILE
    _adopt(LEGACY_SENT_MAIL, path)
    return SqliteSentLedger.open(path)


def checkpoints_path(settings: Settings) -> Path:
    return settings.state_dir / CHECKPOINTS_FILE


def checkpoints_kept(settings: Settings) -> bool:
    """Whether a checkpoint store may hold this suite's checkpoints, without making one: the
    SQLite file exists, or the store is PostgreSQL's (its tables are made on opening)."""
    return bool(settings.state_url) or checkpoints_path(settings).is_file()


def open_checkpoints(settings: Settings) -> CheckpointStore:
    """The audit log's checkpoints; StateError when they cannot be opened."""
    if settings.state_url:
        from shared.state.pg_checkpoints import PostgresCheckpointStore

        return _opened(PostgresCheckpointStore.open(settings.state_url), "checkpoints", settings)
    return SqliteCheckpointStore.open(checkpoints_path(settings))


def audit_log_id(settings: Settings) -> str:
    """Which audit log checkpoints belong to: one per namespace."""
    return settings.namespace or "default"


def open_api_keys(settings: Settings) -> ApiKeyStore:
    """The API key store (gateway, audit, mailer and the CLI); StateError when it cannot be
    opened."""
    if settings.state_url:
        from shared.state.pg_keys import PostgresApiKeyStore

        return _opened(PostgresApiKeyStore.open(settings.state_url), "api_keys", settings)
    return SqliteApiKeyStore.open(settings.state_dir / API_KEYS_FILE)


def _opened(store: T, name: str, settings: Settings) -> T:
    log.debug("state_opened", store=name, backend="postgresql", url=masked(settings.state_url))
    return store


def _adopt(legacy: Path, path: Path) -> None:
    if adopt_legacy_file(legacy, path):
        log.warning("state_moved", old=str(legacy), new=str(path), note="the old file stays")
