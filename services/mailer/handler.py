"""The mail job: check, compose, send once, report. Pure of AMQP: the SMTP sender, the ledger
and the blob store are handed in.

Sent once: the Message-ID comes from the job id, and the ledger records the job id right
after the server accepted the mail. A job found in the ledger is not sent again; its report
is written again from the ledger and it succeeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

from services.mailer.addresses import (
    Recipients,
    allowed_only,
    header_value,
    mail_address,
    recipients_of,
)
from services.mailer.attachments import attachment_keys, load_attachments
from services.mailer.compose import compose, message_id_for
from services.mailer.smtp import SmtpSender
from shared.blobs import BlobStore, output_key
from shared.config import Settings
from shared.errors import (
    ConfigError,
    DecodeError,
    JobError,
    PermanentJobError,
    StateError,
    TransientJobError,
)
from shared.jobtypes import MAIL
from shared.jobtypes.mail import MailLimits, MailParams
from shared.jobtypes.models import parse_params
from shared.log import get_logger
from shared.messages import Job
from shared.state import SentLedger, SentRecord

REPORT_NAME = "sent.json"
log = get_logger(__name__)


@dataclass(frozen=True)
class MailConfig:
    sender: Address  # MAIL_FROM: fixed by configuration, never taken from a job
    # MAX_RECIPIENTS, MAX_MAIL_BYTES, MAX_ATTACHMENTS, MAIL_ALLOWED_DOMAINS, as the gateway
    # checks them
    limits: MailLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> MailConfig:
        try:
            sender = mail_address(settings.mail_from, "MAIL_FROM")
        except JobError as e:
            raise ConfigError(str(e)) from None
        return cls(sender, MAIL.limits(settings))


def mail_job(
    job: Job,
    blobs: BlobStore,
    *,
    config: MailConfig,
    sender: SmtpSender,
    ledger: SentLedger,
) -> list[str]:
    """Send the mail of `job` unless the ledger says it was sent; return the report's key."""
    params = _parse(job)
    recipients = recipients_of(params, config.limits.max_recipients)
    # The runner refused the job already if a recipient is not allowed (shared/limits.py);
    # this is the check on the very addresses handed to SMTP.
    allowed_only(recipients, config.limits)
    header_value(params.subject, "subject")
    done = _lookup(ledger, job.id)
    if done is not None:
        log.info("mail_already_sent_ledger_hit", message_id=done.message_id, sent_at=done.sent_at)
        return [_write_report(blobs, done)]
    keys = attachment_keys(job.inputs, params.attachments, blobs, job.client)
    message = compose(
        params,
        recipients,
        sender=config.sender,
        message_id=message_id_for(job.id),
        date=job.submitted_at,
        attachments=load_attachments(keys, blobs, config.limits.max_bytes, params.body_bytes),
    )
    record = _send_once(job, message, config.sender, recipients, sender, ledger)
    log.info(
        "mail_sent",
        message_id=record.message_id,
        recipients=record.recipients,
        attachments=len(keys),
        refused=record.refused or None,
    )
    if record.refused:
        log.warning("recipients_refused", refused=record.refused)
    return [_write_report(blobs, record)]


def _send_once(
    job: Job,
    message: EmailMessage,
    from_address: Address,
    recipients: Recipients,
    sender: SmtpSender,
    ledger: SentLedger,
) -> SentRecord:
    envelope = recipients.envelope()
    message_id = str(message["Message-ID"])
    with sender.session() as smtp:
        refused = smtp.send(message, from_address.addr_spec, envelope)
        # THE ONE WINDOW FOR A DUPLICATE: the server has answered 250 to DATA, the ledger
        # below has not committed yet. A crash here sends the mail again on redelivery, with
        # the same Message-ID (the mail sink, and many real servers, drop the copy). Nothing
        # runs in between but building the record: no logging, no QUIT (that comes after).
        # (SMTP itself has the same gap one step earlier: a 250 lost on the wire looks like a
        # timeout, so the retry resends; RFC 1047. The Message-ID covers that one too.)
        record = SentRecord(
            job.id,
            message_id,
            len(envelope) - len(refused),
            {addr: f"{code} {text}" for addr, (code, text) in refused.items()},
            client=job.client,
        )
        try:
            ledger.record(record)
        except StateError as e:
            # The mail is out: failing the job now would only send it again. The runner's
            # manifest still stops a plain redelivery; say loudly that the ledger missed it.
            log.error("ledger_write_failed_after_send", error=str(e))
    return record


def _parse(job: Job) -> MailParams:
    try:
        return parse_params(MailParams, job.params)
    except DecodeError as e:
        raise PermanentJobError(str(e), kind="invalid_params") from e


def _lookup(ledger: SentLedger, job_id: str) -> SentRecord | None:
    try:
        return ledger.lookup(job_id)
    except StateError as e:
        # Without the ledger we cannot know whether it was sent: wait rather than risk a copy.
        raise TransientJobError(str(e), kind="ledger") from e


def _write_report(blobs: BlobStore, record: SentRecord) -> str:
    key = output_key(record.job_id, REPORT_NAME)
    return blobs.write_bytes(key, json.dumps(record.report(), indent=2).encode())
