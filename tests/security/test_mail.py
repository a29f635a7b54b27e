"""Hostile mail jobs (corpus/mail/): header injection in the subject and in recipients, a
list smuggled into one address, too many recipients, hostile attachment ids.

The gateway refuses each with 422 naming the field; the same params put straight onto the
queue fail in the mailer (job.failed naming the reason) before any SMTP. Either way the sink
never sees a mail for the victim or the injected address, and the next good mail goes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.messages import Job
from tests.security.conftest import GOOD_RECIPIENT, Suite, corpus_files, corpus_json
from tests.support.broker import EventWatcher


@dataclass(frozen=True)
class MailCase:
    field: tuple[str | int, ...]  # where the gateway's 422 points (after "body")
    kind: str  # the mailer's job.failed error kind
    says: str  # in the mailer's message


INJECTION = "line break or control character"
ONE_ADDRESS = "one e-mail address"
NOT_A_JOB = "is not a job id"
CASES: dict[str, MailCase] = {
    "subject-crlf-bcc": MailCase(("subject",), "header_injection", INJECTION),
    "subject-lf-only": MailCase(("subject",), "header_injection", INJECTION),
    "subject-cr-only": MailCase(("subject",), "header_injection", INJECTION),
    "subject-unicode-line-separator": MailCase(("subject",), "header_injection", INJECTION),
    "subject-nel-c1-control": MailCase(("subject",), "header_injection", INJECTION),
    "subject-nul": MailCase(("subject",), "header_injection", INJECTION),
    "to-crlf-bcc-header": MailCase(("to", 0), "header_injection", INJECTION),
    "to-comma-list-in-one-entry": MailCase(("to", 0), "invalid_address", ONE_ADDRESS),
    "to-semicolon-list-in-one-entry": MailCase(("to", 0), "invalid_address", ONE_ADDRESS),
    "to-group-syntax": MailCase(("to", 0), "invalid_address", ONE_ADDRESS),
    "to-address-as-display-name": MailCase(("to", 0), "invalid_address", ONE_ADDRESS),
    "to-quoted-address-as-display-name": MailCase(("to", 0), "invalid_address", "display name"),
    "to-two-angle-addresses": MailCase(("to", 0), "invalid_address", ONE_ADDRESS),
    "cc-crlf-header": MailCase(("cc", 0), "header_injection", INJECTION),
    "bcc-list-in-one-entry": MailCase(("bcc", 0), "invalid_address", ONE_ADDRESS),
    "too-many-recipients": MailCase(("to",), "too_many_recipients", "at most 50 (MAX_RECIPIENTS)"),
    "attachments-path-traversal": MailCase(("attachments", 0), "missing_attachment", NOT_A_JOB),
    "attachments-absolute-path": MailCase(("attachments", 0), "missing_attachment", NOT_A_JOB),
    "attachments-nul-byte": MailCase(("attachments", 0), "missing_attachment", NOT_A_JOB),
    "attachments-id-with-trailing-newline": MailCase(
        ("attachments", 0), "missing_attachment", NOT_A_JOB
    ),
}
FILES = corpus_files("mail")


def test_every_mail_case_has_an_expectation() -> None:
    assert sorted(p.stem for p in FILES) == sorted(CASES)


def _no_mail_but_good_mail(suite: Suite) -> None:
    recipients = suite.sink_recipients()
    assert recipients, "the good mail jobs should have reached the sink"
    strangers = {r for r in recipients if GOOD_RECIPIENT not in r}
    assert strangers == set(), f"mail went to {strangers}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_gateway_refuses_it_naming_the_field(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    case = CASES[path.stem]
    response = suite.http.post("/jobs/mail", json=corpus_json(path))
    assert response.status_code == 422, response.text
    locs = [tuple(error["loc"]) for error in response.json()["detail"]]
    assert ("body", *case.field) in locs, locs
    good = suite.good_job("mail")
    accepted = suite.http.post("/jobs/mail", json=good.params)
    assert accepted.status_code == 202, accepted.text
    suite.succeeded(events, accepted.json()["id"])
    _no_mail_but_good_mail(suite)
    suite.check_after_case()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_mailer_refuses_it_from_the_queue(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    case = CASES[path.stem]
    event = suite.publish_with_good_job(events, Job(type="mail", params=corpus_json(path)))
    assert event["event"] == "job.failed", event
    assert event["error"]["kind"] == case.kind, event["error"]
    assert case.says in event["error"]["message"], event["error"]
    _no_mail_but_good_mail(suite)
    suite.check_after_case()
