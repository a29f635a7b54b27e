"""Shared state: what services must remember across requests, jobs and replicas.

One store per concern, each behind a Protocol, each opened from the settings here:
- submissions (`submissions.py`): the gateway's Idempotency-Key reservations and accepted jobs;
- sent mail (`sent_mail.py`): the mailer's send-once ledger.

Today each is a SQLite file under STATE_DIR (never inside BLOB_DIR or AUDIT_DIR), so the
replicas of a service must share that folder on one host. The openers are the only place
that picks an implementation: no code outside this package knows which one it holds.
"""

from __future__ import annotations

from shared.config import Settings
from shared.state.sent_mail import SentLedger, SentRecord, SqliteSentLedger
from shared.state.submissions import (
    KEY_TTL_S,
    AcceptedJob,
    Claim,
    Reservation,
    SqliteSubmissionLedger,
    SubmissionLedger,
)

__all__ = [
    "KEY_TTL_S",
    "SENT_MAIL_FILE",
    "SUBMISSIONS_FILE",
    "AcceptedJob",
    "Claim",
    "Reservation",
    "SentLedger",
    "SentRecord",
    "SubmissionLedger",
    "open_sent_mail",
    "open_submissions",
]

SUBMISSIONS_FILE = "submissions.sqlite3"
SENT_MAIL_FILE = "sent-mail.sqlite3"


def open_submissions(settings: Settings) -> SubmissionLedger:
    """The gateway's submissions store; StateError when it cannot be opened."""
    return SqliteSubmissionLedger.open(settings.state_dir / SUBMISSIONS_FILE)


def open_sent_mail(settings: Settings) -> SentLedger:
    """The mailer's sent-mail ledger; StateError when it cannot be opened."""
    return SqliteSentLedger.open(settings.state_dir / SENT_MAIL_FILE)
