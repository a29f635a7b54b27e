"""What a submission may do for the key that sends it, beyond its params: its own limits
(`KeyLimits`: recipients per mail, mails per hour) and whose jobs a mail may attach.

Each mail in the job and in its follow-ups (`then`) is checked. Refusals: 422 naming the
per-key recipient limit; 429 with `Retry-After` over the hourly mail count (every mail a
job and its follow-ups send, counted in the submissions store, so it holds across gateway
replicas); for an attachment id the caller may not see, the same answer as for an id that
does not exist (404, or 503 while the audit is down). A mail may attach its own client's
jobs only (the mailer refuses the rest too), so an admin gets a 403 for another client's
job.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.gateway.rejections import Rejected, field_error
from services.gateway.status import JobLookup
from shared.auth import Caller
from shared.messages import Job, follow_ups
from shared.state import SubmissionLedger
from shared.words import count

MAIL = "mail"
HOUR = timedelta(hours=1)
RETRY_AFTER_S = "60"


def mails_in(job: Job) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(where, params) of every mail in the job and its chain of follow-ups."""
    if job.type == MAIL:
        yield (), job.params
    for where, then in follow_ups(job.then):
        if then.type == MAIL:
            yield (*where, "params"), then.params


def check_job(job: Job, caller: Caller, lookup: JobLookup, ledger: SubmissionLedger) -> None:
    found = list(mails_in(job))
    for where, params in found:
        _check_recipients(caller, params, where)
        _check_attachments(caller, lookup, params, where)
    if found:
        _check_hourly(caller, ledger, len(found))


def _check_recipients(caller: Caller, params: dict[str, Any], where: tuple[str, ...]) -> None:
    if caller.limits is None:
        return
    count = sum(len(params.get(f) or []) for f in ("to", "cc", "bcc"))
    allowed = caller.limits.recipients_per_mail
    if count > allowed:
        raise field_error(
            (*where, "to"),
            f"{count} recipients (to, cc and bcc together): the API key {caller.name!r} may"
            f" send to {allowed} per mail",
            "too_many_recipients_for_key",
        )


def _check_attachments(
    caller: Caller, lookup: JobLookup, params: dict[str, Any], where: tuple[str, ...]
) -> None:
    for i, job_id in enumerate(params.get("attachments") or []):
        field = ".".join(str(p) for p in (*where, "attachments", i))
        try:
            # Not the caller's: exactly the answer for an id that does not exist.
            owner = lookup.owner(job_id, caller.may_see)
        except Rejected as e:
            raise Rejected(e.status, e.kind, f"{field}: {e.message}", headers=e.headers) from None
        if caller.name is not None and owner != caller.name:
            raise Rejected(
                403,
                "foreign_attachment",
                f"{field}: job {job_id} belongs to another client; a mail may attach its own"
                " client's jobs only",
            )


def _check_hourly(caller: Caller, ledger: SubmissionLedger, mails: int) -> None:
    if caller.limits is None or caller.name is None:
        return
    since = datetime.now(UTC) - HOUR
    sent = ledger.mails_since(caller.name, since)
    allowed = caller.limits.mails_per_hour
    if sent + mails > allowed:
        raise Rejected(
            429,
            "mail_rate_limited",
            f"the API key {caller.name!r} may submit {count(allowed, 'mail')} an hour (follow-ups"
            f" included) and has submitted {sent} in the last hour; this job sends {mails}",
            headers={"Retry-After": RETRY_AFTER_S},
        )
