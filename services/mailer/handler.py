"""The mail job: check, compose, send once, report. Pure of AMQP: the SMTP sender, the ledger
and the blob store are handed in.

Sent once: the Message-ID comes from the job id, and the ledger records the job id right
after the server accepted the mail. A job found in the ledger is not sent again; its report
is written again from the ledger and it succeeds. Before it sends, a mailer claims the job in
the ledger: a second delivery of a job whose mail another mailer is still sending (it lost
the broker mid-send) is deferred until that one recorded the mail, gave up, or outlived its
claim (shared/state/sent_mail.py).
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
from services.mailer.holders import holder_gone, this_holder
from services.mailer.smtp import Refusals, SmtpSender
from shared.blobs import BlobStore, output_key
from shared.config import Settings
from shared.errors import (
    ConfigError,
    DecodeError,
    JobDeferred,
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
from shared.state import SendClaim, SentLedger, SentRecord
from shared.worker import longest_run_s

REPORT_NAME = "sent.json"
# A claim outlasts the longest its holder can still be sending by this much: a sender
# interrupted at its time limit first gives its SMTP session back, up to its socket timeout,
# and a worker reconnecting to the broker looks at its limits between connection attempts,
# each of which can take seconds per node.
CLAIM_MARGIN_S = 60.0
log = get_logger(__name__)


@dataclass(frozen=True)
class MailConfig:
    sender: Address  # MAIL_FROM: fixed by configuration, never taken from a job
    # MAX_RECIPIENTS, MAX_MAIL_BYTES, MAX_ATTACHMENTS, MAIL_ALLOWED_DOMAINS, as the gateway
    # checks them
    limits: MailLimits
    # How long a claim on sending a job's mail lasts: longer than this mailer can be sending
    # it (its JOB_TIME_LIMIT, then the stuck grace after which its process ends).
    claim_s: float = longest_run_s(Settings().job_time_limit) + CLAIM_MARGIN_S

    @classmethod
    def from_settings(cls, settings: Settings) -> MailConfig:
        try:
            sender = mail_address(settings.mail_from, "MAIL_FROM")
        except JobError as e:
            raise ConfigError(str(e)) from None
        claim_s = longest_run_s(settings.job_time_limit) + CLAIM_MARGIN_S
        return cls(sender, MAIL.limits(settings), claim_s)


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
        return [_already_sent(blobs, done)]
    keys = attachment_keys(job.inputs, params.attachments, blobs, job.client)
    message = compose(
        params,
        recipients,
        sender=config.sender,
        message_id=message_id_for(job.id),
        date=job.submitted_at,
        attachments=load_attachments(keys, blobs, config.limits.max_bytes, params.body_bytes),
    )
    claim = _claim(ledger, job.id, config.claim_s)
    if isinstance(claim, SentRecord):  # sent by another mailer since the look above
        return [_already_sent(blobs, claim)]
    record = _send_once(job, message, config.sender, recipients, sender, ledger, claim.holder)
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
    holder: str,
) -> SentRecord:
    envelope = recipients.envelope()
    message_id = str(message["Message-ID"])
    accepted = False
    try:
        with sender.session() as smtp:
            refused = smtp.send(message, from_address.addr_spec, envelope)
            accepted = True
            return _recorded(job, message_id, envelope, refused, ledger)
    except BaseException:
        if not accepted:  # the server has not taken it: the next delivery may send at once
            _release(ledger, job.id, holder)
        raise


def _recorded(
    job: Job, message_id: str, envelope: list[str], refused: Refusals, ledger: SentLedger
) -> SentRecord:
    # THE ONE WINDOW FOR A DUPLICATE: the server has answered 250 to DATA, the ledger below
    # has not committed yet. A crash here sends the mail again on redelivery (at once by a
    # mailer of this machine, which sees this process gone; else once the claim ran out),
    # with the same Message-ID (the mail sink, and many real servers, drop the copy). Nothing
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
        # manifest still stops a plain redelivery, and the claim any other for its lease;
        # say loudly that the ledger missed it.
        log.error("ledger_write_failed_after_send", error=str(e))
    return record


def _claim(ledger: SentLedger, job_id: str, lease_s: float) -> SentRecord | SendClaim:
    """The job's record when its mail went out meanwhile, else this mailer's claim on sending
    it; JobDeferred while another mailer's claim holds. A claim whose holder died on this
    machine (killed mid-send) is taken over at once."""
    holder = this_holder()
    try:
        claim = ledger.claim(job_id, holder, lease_s)
        if isinstance(claim, SendClaim) and claim.holder != holder and holder_gone(claim.holder):
            log.warning("mail_claim_taken_from_an_ended_mailer", holder=claim.holder)
            claim = ledger.claim(job_id, holder, lease_s, replacing=claim.holder)
    except StateError as e:
        raise TransientJobError(str(e), kind="ledger") from e
    if isinstance(claim, SendClaim) and claim.holder != holder:
        log.warning("mail_being_sent_elsewhere", holder=claim.holder, until=claim.expires)
        raise JobDeferred(
            f"another mailer ({claim.holder}) is sending this job's mail, its claim until"
            f" {claim.expires.isoformat(timespec='seconds')}",
            kind="mail_in_flight",
        )
    return claim


def _release(ledger: SentLedger, job_id: str, holder: str) -> None:
    try:
        ledger.release(job_id, holder)
    except StateError as e:  # the claim runs out at its lease instead: the mail waits, no more
        log.warning("mail_claim_not_released", error=str(e))


def _already_sent(blobs: BlobStore, record: SentRecord) -> str:
    log.info("mail_already_sent_ledger_hit", message_id=record.message_id, sent_at=record.sent_at)
    return _write_report(blobs, record)


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
