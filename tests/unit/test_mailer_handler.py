"""The mail job handler with a fake SMTP sender, a real ledger and a real blob store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.mailer.handler import MailConfig, mail_job
from services.mailer.holders import this_holder
from services.mailer.smtp import Refusals
from shared.blobs import FolderBlobStore, input_key, output_key
from shared.config import Settings
from shared.errors import (
    ConfigError,
    JobDeferred,
    JobError,
    PermanentJobError,
    StateError,
    TransientJobError,
)
from shared.ids import new_id
from shared.jobtypes.mail import MailLimits
from shared.messages import Job
from shared.state.sent_mail import SendClaim, SentRecord, SqliteSentLedger

CONFIG = MailConfig(
    Address("Jobs", "jobs", "example.com"), MailLimits(max_recipients=5, max_bytes=1000)
)


@dataclass
class Sent:
    message: EmailMessage
    sender: str
    recipients: list[str]


@dataclass
class FakeSender:
    """An SmtpSender that records what it was asked, in order, with `calls` shared."""

    calls: list[str]
    error: JobError | None = None
    refused: Refusals = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)

    @contextmanager
    def session(self) -> Iterator[FakeSender]:
        self.calls.append("connect")
        try:
            yield self
        finally:
            self.calls.append("quit")

    def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> Refusals:
        self.calls.append("send")
        if self.error is not None:
            raise self.error
        self.sent.append(Sent(message, sender, list(recipients)))
        return self.refused


class RecordingLedger(SqliteSentLedger):
    def __init__(self, path: Path, calls: list[str], fail_writes: bool = False) -> None:
        super().__init__(SqliteSentLedger.open(path)._db)
        self.calls = calls
        self.fail_writes = fail_writes

    def record(self, entry: SentRecord) -> None:
        self.calls.append("ledger")
        if self.fail_writes:
            raise StateError("disk full")
        super().record(entry)


@dataclass
class Mailer:
    blobs: FolderBlobStore
    sender: FakeSender
    ledger: RecordingLedger
    calls: list[str]

    def run(self, job: Job, config: MailConfig = CONFIG) -> list[str]:
        return mail_job(job, self.blobs, config=config, sender=self.sender, ledger=self.ledger)


@pytest.fixture
def mailer(tmp_path: Path) -> Mailer:
    calls: list[str] = []
    return Mailer(
        FolderBlobStore(tmp_path / "blobs"),
        FakeSender(calls),
        RecordingLedger(tmp_path / "sent.sqlite3", calls),
        calls,
    )


def mail(inputs: list[str] | None = None, **params: object) -> Job:
    base: dict[str, object] = {"to": ["ann@example.com"], "subject": "Report", "text": "Hi"}
    return Job(type="mail", params={**base, **params}, inputs=inputs or [])


def finished_job(blobs: FolderBlobStore, files: dict[str, bytes]) -> str:
    """An earlier job's outputs and manifest, as the runner leaves them."""
    job_id = new_id()
    keys = [blobs.write_bytes(output_key(job_id, name), data) for name, data in files.items()]
    blobs.write_manifest(job_id, keys)
    return job_id


def test_a_mail_is_sent_once_and_reported(mailer: Mailer) -> None:
    job = mail(cc=["cc@example.com"], bcc=["hidden@example.com"])
    outputs = mailer.run(job)

    (sent,) = mailer.sender.sent
    assert sent.sender == "jobs@example.com"
    assert sent.recipients == ["ann@example.com", "cc@example.com", "hidden@example.com"]
    assert sent.message["Message-ID"] == f"<{job.id}@jobsuite>"
    assert "Bcc" not in sent.message
    assert outputs == [output_key(job.id, "sent.json")]
    report = json.loads(mailer.blobs.read_bytes(outputs[0]))
    assert report["message_id"] == f"<{job.id}@jobsuite>"
    assert (report["recipients"], report["refused"]) == (3, {})
    assert mailer.ledger.lookup(job.id) is not None


def test_the_ledger_is_written_right_after_the_server_accepted_and_before_quit(
    mailer: Mailer,
) -> None:
    mailer.run(mail())
    assert mailer.calls == ["connect", "send", "ledger", "quit"]


def test_a_job_in_the_ledger_is_not_sent_again_and_the_hit_is_logged(mailer: Mailer) -> None:
    job = mail()
    first = mailer.run(job)
    mailer.blobs.delete_prefix(f"outputs/{job.id}")  # as if the worker died before its manifest
    with capture_logs() as logs:
        again = mailer.run(job.next_attempt())

    assert len(mailer.sender.sent) == 1
    assert again == first
    assert json.loads(mailer.blobs.read_bytes(again[0]))["message_id"] == f"<{job.id}@jobsuite>"
    assert [e["event"] for e in logs] == ["mail_already_sent_ledger_hit"]


def test_a_transient_smtp_failure_records_nothing_so_the_retry_sends(mailer: Mailer) -> None:
    job = mail()
    mailer.sender.error = TransientJobError("451 try later")
    with pytest.raises(TransientJobError):
        mailer.run(job)
    assert mailer.ledger.lookup(job.id) is None
    assert mailer.calls == ["connect", "send", "quit"]

    mailer.sender.error = None
    mailer.run(job.next_attempt())
    assert len(mailer.sender.sent) == 1


def test_recipients_refused_by_some_are_reported_and_not_retried(mailer: Mailer) -> None:
    mailer.sender.refused = {"gone@example.com": (550, "5.1.1 no such user")}
    job = mail(to=["ann@example.com", "gone@example.com"])
    with capture_logs() as logs:
        (report_key,) = mailer.run(job)
    report = json.loads(mailer.blobs.read_bytes(report_key))
    assert report["refused"] == {"gone@example.com": "550 5.1.1 no such user"}
    assert report["recipients"] == 1
    assert any(e["event"] == "recipients_refused" for e in logs)
    assert mailer.ledger.lookup(job.id) is not None


def test_inputs_and_earlier_jobs_outputs_are_attached_in_order(mailer: Mailer) -> None:
    blobs = mailer.blobs
    own = mail().id
    photo = blobs.write_bytes(input_key(own, "photo.png"), b"\x89PNG-bytes")
    earlier = finished_job(blobs, {"invoice.pdf": b"%PDF-1", "100x100.jpg": b"jpeg-1"})
    other = finished_job(blobs, {"100x100.jpg": b"jpeg-2"})
    job = Job(
        id=own,
        type="mail",
        params={
            "to": ["a@example.com"],
            "subject": "s",
            "text": "t",
            "attachments": [earlier, other],
        },
        inputs=[photo],
    )
    mailer.run(job)

    parts = list(mailer.sender.sent[0].message.iter_attachments())
    assert [(p.get_filename(), p.get_content_type(), p.get_content()) for p in parts] == [
        ("photo.png", "image/png", b"\x89PNG-bytes"),
        ("invoice.pdf", "application/pdf", b"%PDF-1"),
        ("100x100.jpg", "image/jpeg", b"jpeg-1"),
        ("100x100-2.jpg", "image/jpeg", b"jpeg-2"),
    ]


def test_an_earlier_job_without_finished_outputs_is_permanent(mailer: Mailer) -> None:
    unfinished = new_id()
    with pytest.raises(PermanentJobError, match=f"job {unfinished} has no finished outputs"):
        mailer.run(mail(attachments=[unfinished]))
    assert mailer.calls == []


@pytest.mark.parametrize("bad", ["../../etc", "not a job id", ""])
def test_an_attachment_that_is_not_a_job_id_is_permanent(mailer: Mailer, bad: str) -> None:
    with pytest.raises(PermanentJobError, match="is not a job id"):
        mailer.run(mail(attachments=[bad]))


def test_a_missing_input_is_permanent(mailer: Mailer) -> None:
    job = mail()
    missing = input_key(job.id, "gone.pdf")
    with pytest.raises(PermanentJobError, match="does not exist"):
        mailer.run(job.model_copy(update={"inputs": [missing]}))
    assert mailer.sender.sent == []


def test_attachments_over_the_size_limit_are_refused_before_reading(mailer: Mailer) -> None:
    big = finished_job(mailer.blobs, {"a.bin": b"x" * 600, "b.bin": b"y" * 600})
    with pytest.raises(PermanentJobError) as refused:
        mailer.run(mail(attachments=[big]))
    assert refused.value.kind == "too_large"
    assert "attachments 1200" in str(refused.value)


def test_text_and_html_count_against_the_size_limit_with_the_attachments(mailer: Mailer) -> None:
    small = finished_job(mailer.blobs, {"a.bin": b"x" * 600})
    with pytest.raises(PermanentJobError, match=r"comes to 1100 bytes .* text and html 500"):
        mailer.run(mail(attachments=[small], text="t" * 500))
    with pytest.raises(PermanentJobError, match="MAX_MAIL_BYTES"):
        mailer.run(mail(text="t" * 1001))  # no attachments: straight from the queue
    assert mailer.sender.sent == []


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"text": None}, "invalid_params"),
        ({"to": []}, "invalid_params"),
        ({"to": ["a@x.com, b@y.com"]}, "invalid_address"),
        ({"bcc": ["a@x.com\r\nX-Evil: 1"]}, "header_injection"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "header_injection"),
        ({"to": [f"r{i}@example.com" for i in range(6)]}, "too_many_recipients"),
    ],
)
def test_bad_mail_jobs_fail_permanently_before_any_smtp(
    mailer: Mailer, params: dict[str, object], kind: str
) -> None:
    with pytest.raises(PermanentJobError) as refused:
        mailer.run(mail(**params))
    assert refused.value.kind == kind
    assert mailer.calls == []


def test_a_ledger_that_cannot_be_read_is_transient(mailer: Mailer) -> None:
    mailer.ledger.close()
    with pytest.raises(TransientJobError) as raised:
        mailer.run(mail())
    assert raised.value.kind == "ledger"
    assert mailer.calls == []


def test_a_ledger_write_failing_after_the_send_does_not_fail_the_job(
    tmp_path: Path, mailer: Mailer
) -> None:
    mailer.ledger = RecordingLedger(tmp_path / "other.sqlite3", mailer.calls, fail_writes=True)
    with capture_logs() as logs:
        outputs = mailer.run(mail())
    assert len(mailer.sender.sent) == 1
    assert outputs
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "ledger_write_failed_after_send"
    ]


def test_a_job_whose_mail_another_mailer_is_sending_is_deferred_unsent(mailer: Mailer) -> None:
    job = mail()
    # Another replica took the job first and lost the broker mid-send; this is the redelivery.
    mailer.ledger.claim(job.id, "other-host:7:ab12", 300)
    with capture_logs() as logs, pytest.raises(JobDeferred) as raised:
        mailer.run(job)

    assert raised.value.kind == "mail_in_flight"
    assert "other-host:7:ab12" in str(raised.value)
    assert mailer.calls == []
    assert [e["event"] for e in logs] == ["mail_being_sent_elsewhere"]

    # Its mail went out: the deferred job, back from its back-off, succeeds without a copy.
    entry = SentRecord(job.id, f"<{job.id}@jobsuite>", 1)
    mailer.ledger.record(entry)
    assert mailer.run(job) == [output_key(job.id, "sent.json")]
    assert mailer.sender.sent == []


def test_the_mail_is_sent_once_another_mailers_claim_has_run_out(mailer: Mailer) -> None:
    job = mail()
    mailer.ledger.claim(job.id, "crashed-mid-send", 0.1)
    time.sleep(0.3)
    mailer.run(job)
    assert len(mailer.sender.sent) == 1
    assert mailer.ledger.claim(job.id, "anyone", 60) == mailer.ledger.lookup(job.id)


def test_the_claim_of_a_mailer_that_died_on_this_machine_is_taken_over_at_once(
    mailer: Mailer,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, _, machine, token = this_holder().rsplit(":", 3)
    dead = f"{host}:{child.pid}:{machine}:{token}"
    job = mail()
    mailer.ledger.claim(job.id, dead, 300)  # killed mid-send, its claim left for 300 s
    with capture_logs() as logs:
        mailer.run(job)
    assert len(mailer.sender.sent) == 1
    taken = [e for e in logs if e["event"] == "mail_claim_taken_from_an_ended_mailer"]
    assert [e["holder"] for e in taken] == [dead]


def test_a_send_that_fails_before_the_servers_250_gives_its_claim_up(mailer: Mailer) -> None:
    job = mail()
    mailer.sender.error = TransientJobError("451 try later")
    with pytest.raises(TransientJobError):
        mailer.run(job)
    # The retry may go to any replica, at once: no claim of the failed send holds it.
    taken = mailer.ledger.claim(job.id, "other", 60)
    assert isinstance(taken, SendClaim) and taken.holder == "other"


def test_a_send_claimed_meanwhile_by_another_mailer_that_sent_is_not_sent(
    mailer: Mailer, tmp_path: Path
) -> None:
    """The ledger's first look found nothing; by the claim, another mailer had sent it."""
    job = mail()
    entry = SentRecord(job.id, f"<{job.id}@jobsuite>", 1)

    class SentMeanwhile(RecordingLedger):
        def lookup(self, job_id: str) -> SentRecord | None:
            found = super().lookup(job_id)
            super().record(entry)
            return found

    mailer.ledger = SentMeanwhile(tmp_path / "meanwhile.sqlite3", mailer.calls)
    with capture_logs() as logs:
        outputs = mailer.run(job)
    assert mailer.sender.sent == []
    assert json.loads(mailer.blobs.read_bytes(outputs[0]))["message_id"] == entry.message_id
    assert [e["event"] for e in logs] == ["mail_already_sent_ledger_hit"]


def test_a_claim_lasts_longer_than_its_mailer_can_be_sending() -> None:
    config = MailConfig.from_settings(Settings(job_time_limit=100))
    assert config.claim_s == 100 + 30 + 60  # the limit, the stuck grace, a margin
    assert MailConfig.from_settings(Settings(job_time_limit=10)).claim_s == 10 + 10 + 60


def test_the_sender_address_comes_from_configuration_only() -> None:
    config = MailConfig.from_settings(Settings(mail_from="Jobsuite <noreply@example.com>"))
    assert config.sender.addr_spec == "noreply@example.com"
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        MailConfig.from_settings(Settings(mail_from="a@x.com, b@y.com"))


def test_a_from_field_in_the_job_is_refused(mailer: Mailer) -> None:
    with pytest.raises(PermanentJobError) as refused:
        mailer.run(mail(**{"from": "ceo@example.com"}))
    assert refused.value.kind == "invalid_params"


@pytest.mark.parametrize(
    "params",
    [
        {"to": ["ann@example.com", "eve@gmail.com"]},
        {"cc": ["Eve <eve@example.com.evil.net>"]},
        {"bcc": ["root@127.0.0.1"]},
    ],
)
def test_a_recipient_outside_the_allowed_domains_fails_the_job_before_any_smtp(
    mailer: Mailer, params: dict[str, object]
) -> None:
    # The runner refuses such a job before the handler (shared/limits.py); the handler checks
    # the very addresses it would hand to SMTP all the same.
    with pytest.raises(PermanentJobError) as refused:
        mailer.run(mail(**params))
    assert refused.value.kind == "recipient_not_allowed"
    assert "is not allowed" in str(refused.value) and "nothing was sent" in str(refused.value)
    assert mailer.calls == []


def test_allowed_domains_from_the_settings_reach_the_mailer(mailer: Mailer) -> None:
    settings = Settings.from_env({"MAIL_ALLOWED_DOMAINS": "*.corp.io"})
    config = MailConfig.from_settings(settings)
    mailer.run(mail(to=["ann@eu.corp.io"]), config)
    with pytest.raises(PermanentJobError, match=r"mail to ann@example\.com is not allowed"):
        mailer.run(mail(), config)
