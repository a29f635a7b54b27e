"""The mailer as a real process, against the real RabbitMQ and the real mail sink process."""

from __future__ import annotations

import asyncio
import email.policy
import json
import threading
import time
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from shared.blobs import FolderBlobStore, input_key, output_key
from shared.config import Settings
from shared.ids import new_id
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker, close_connections_named
from tests.support.mailsink import MailSink, start_mailsink
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess
from tests.support.smtp_server import LocalSmtpServer

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 16


@pytest.fixture
def sink(spawn: SpawnFn, tmp_path: Path) -> MailSink:
    return start_mailsink(spawn, tmp_path / "mail", chaos_api=True)


def start_mailer(spawn: SpawnFn, tmp_path: Path, smtp_port: int) -> ServiceProcess:
    mailer = spawn(
        "services.mailer",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_TIMEOUT="5",
        MAIL_FROM="Jobsuite <jobs@example.com>",
    )
    mailer.wait_logged("consuming")
    return mailer


def mail_job(**params: object) -> Job:
    base: dict[str, object] = {"to": ["Ann <ann@example.com>"], "subject": "Hi", "text": "Hello"}
    return Job(type="mail", params={**base, **params})


def test_a_mail_with_attachments_arrives_with_their_bytes_intact(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, sink: MailSink, tmp_path: Path
) -> None:
    events = broker.events()
    blobs = FolderBlobStore(settings.blob_dir)
    earlier = new_id()  # a finished render job: its output and manifest
    blobs.write_manifest(earlier, [blobs.write_bytes(output_key(earlier, "invoice.pdf"), PDF)])
    job = mail_job(
        cc=["cc@example.com"],
        bcc=["secret@hidden.example"],
        html="<p>Hello</p>",
        attachments=[earlier],
    )
    job = job.model_copy(
        update={"inputs": [blobs.write_bytes(input_key(job.id, "photo.png"), PNG)]}
    )
    start_mailer(spawn, tmp_path, sink.smtp_port)
    broker.publish_job(job)

    done = events.wait_for(job.id, "job.succeeded")[0]
    assert done["outputs"] == [output_key(job.id, "sent.json")]
    (summary,) = sink.wait_for_messages(1)
    assert summary["message_id"] == f"<{job.id}@jobsuite>"
    assert summary["from"] == "Jobsuite <jobs@example.com>"
    assert summary["envelope_to"] == ["ann@example.com", "cc@example.com", "secret@hidden.example"]
    detail = sink.message(summary["id"])
    assert [(a["name"], a["content_type"]) for a in detail["attachments"]] == [
        ("photo.png", "image/png"),
        ("invoice.pdf", "application/pdf"),
    ]
    assert sink.attachment(summary["id"], "photo.png").content == PNG
    assert sink.attachment(summary["id"], "invoice.pdf").content == PDF
    sent_headers = [n for n, v in detail["headers"] if "hidden.example" in v]
    assert sent_headers == ["X-Mailsink-Envelope-To"]  # the sink's trace, never a Bcc header
    report = json.loads(blobs.read_bytes(output_key(job.id, "sent.json")))
    assert report["recipients"] == 3


def test_the_sink_answering_451_twice_makes_the_mailer_retry_then_succeed(
    spawn: SpawnFn, broker: TestBroker, sink: MailSink, tmp_path: Path
) -> None:
    events = broker.events()
    sink.set_chaos(451, times=2)
    start_mailer(spawn, tmp_path, sink.smtp_port)
    job = mail_job()
    broker.publish_job(job)

    events.wait_for(job.id, "job.succeeded", timeout=30)
    retrying = events.of(job.id, "job.retrying")
    assert [(e["attempt"], e["error"]["kind"]) for e in retrying] == [
        (1, "smtp_4xx"),
        (2, "smtp_4xx"),
    ]
    assert "451" in retrying[0]["error"]["message"]
    assert events.of(job.id, "job.succeeded")[0]["attempt"] == 3
    assert len(sink.messages()) == 1


def test_a_redelivered_mail_job_is_not_sent_again(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, sink: MailSink, tmp_path: Path
) -> None:
    events = broker.events()
    mailer = start_mailer(spawn, tmp_path, sink.smtp_port)
    job = mail_job()
    broker.publish_job(job)
    broker.publish_job(job)  # the same job id twice: the runner's manifest stops the second
    events.wait_for(job.id, "job.succeeded", count=2)
    assert mailer.logged("job_already_done_skipping_handler")

    # As if the worker had died after the ledger commit, before the runner wrote the manifest.
    FolderBlobStore(settings.blob_dir).delete_prefix(f"outputs/{job.id}")
    broker.publish_job(job)
    events.wait_for(job.id, "job.succeeded", count=3)

    (hit,) = mailer.logged("mail_already_sent_ledger_hit")
    assert hit["job_id"] == job.id
    assert len(mailer.logged("mail_sent")) == 1
    assert len(sink.messages()) == 1
    assert len(sink.maildir_files()) == 1


def test_permanent_failures_fail_the_job_into_dead_letters(
    spawn: SpawnFn, broker: TestBroker, sink: MailSink, tmp_path: Path
) -> None:
    events = broker.events()
    sink.set_chaos(550, times=1)
    start_mailer(spawn, tmp_path, sink.smtp_port)
    refused = mail_job()
    injected = mail_job(subject="Hi\r\nBcc: victim@example.com")
    broker.publish_job(refused)
    broker.publish_job(injected)

    assert events.wait_for(refused.id, "job.failed")[0]["error"]["kind"] == "smtp_5xx"
    assert events.wait_for(injected.id, "job.failed")[0]["error"]["kind"] == "header_injection"
    assert not events.of(refused.id, "job.retrying")
    dead = broker.names.dead_queue
    broker.wait_until(lambda: broker.depth(dead) == 2, 10, "both jobs in the dead letters")
    assert {p.message_id for p, _ in broker.drain(dead)} == {refused.id, injected.id}
    assert sink.messages() == []


def test_an_smtp_server_that_is_down_is_retried_then_given_up(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    start_mailer(spawn, tmp_path, free_port())  # nothing listens there
    job = mail_job()
    broker.publish_job(job)

    failed = events.wait_for(job.id, "job.failed", timeout=30)[0]
    assert failed["error"]["kind"] == "smtp_down"
    assert f"gave up after {settings.max_attempts} attempts" in failed["error"]["message"]
    assert len(events.of(job.id, "job.retrying")) == settings.max_attempts - 1


def test_a_non_ascii_subject_arrives_with_every_space(
    spawn: SpawnFn, broker: TestBroker, sink: MailSink, tmp_path: Path
) -> None:
    # The standard folding put a fold on the space between two encoded words: "Łódź· Τιμ…".
    subject = "Faktura 2026-07 dla Łódź · Τιμολόγιο για την εταιρεία · 请款单  ✅ "  # noqa: RUF001
    events = broker.events()
    job = mail_job(to=["Zofia Wójcik-Łęcka <zofia@example.com>"], subject=subject)
    start_mailer(spawn, tmp_path, sink.smtp_port)
    broker.publish_job(job)

    events.wait_for(job.id, "job.succeeded")
    (summary,) = sink.wait_for_messages(1)
    received = BytesParser(policy=email.policy.default).parsebytes(sink.raw(summary["id"]))
    assert received["Subject"] == subject
    assert received["To"].addresses[0].display_name == "Zofia Wójcik-Łęcka"


class HeldData:
    """An SMTP server that holds its answer to DATA (or, `at_rcpt`, to the first RCPT) until
    told to go on: a mail on its way."""

    def __init__(self, at_rcpt: bool = False) -> None:
        self.at_rcpt = at_rcpt
        self.arrived = threading.Event()
        self.go_on = threading.Event()
        self.datas: list[bytes] = []

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if self.at_rcpt:
            await self._hold()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.datas.append(envelope.content)
        if not self.at_rcpt:
            await self._hold()
        return "250 OK"

    async def _hold(self) -> None:
        self.arrived.set()
        while not self.go_on.is_set():
            await asyncio.sleep(0.02)


def test_a_mail_on_its_way_when_its_mailer_lost_the_broker_is_not_sent_by_another(
    spawn: SpawnFn, broker: TestBroker, tmp_path: Path
) -> None:
    held = HeldData()
    events = broker.events()
    with LocalSmtpServer(held) as server:
        start_mailer(spawn, tmp_path, server.port)
        job = mail_job()
        broker.publish_job(job)
        assert held.arrived.wait(30), "the first mailer never sent DATA"
        first = events.wait_for(job.id, "job.started")[0]["instance"]
        start_mailer(spawn, tmp_path, server.port)
        try:
            # The first mailer loses the broker mid-send: the broker gives its job to the
            # other at once, which finds the first one's claim and defers the job.
            closed = close_connections_named(f"{broker.names.task_queue('mail')}:{first}")
            assert closed == 1
            deferred = events.wait_for(job.id, "job.retrying", timeout=30)[0]
        finally:
            held.go_on.set()  # the server takes the mail: the first mailer records it
        assert deferred["error"]["kind"] == "mail_in_flight"
        assert first in deferred["error"]["message"]

        # Back from its back-off, the job finds the record: one mail, not counted a retry.
        done = events.wait_for(job.id, "job.succeeded", timeout=30)
        time.sleep(1)  # a second copy, were one on its way, would have reached DATA by now
    assert len(held.datas) == 1
    assert [e["attempt"] for e in done] == [1]
    assert len(events.of(job.id, "job.succeeded")) == 1


def test_a_mailer_killed_before_its_mail_went_out_is_replaced_at_once(
    spawn: SpawnFn, broker: TestBroker, tmp_path: Path
) -> None:
    """Its claim would hold the job for JOB_TIME_LIMIT and more; a mailer on the same machine
    sees its holder's process gone and takes over."""
    held = HeldData(at_rcpt=True)
    events = broker.events()
    with LocalSmtpServer(held) as server:
        first = start_mailer(spawn, tmp_path, server.port)
        job = mail_job()
        broker.publish_job(job)
        assert held.arrived.wait(30), "the first mailer never reached RCPT"
        other = start_mailer(spawn, tmp_path, server.port)
        first.kill()  # SIGKILL, its claim left behind; the broker gives the job to the other
        held.go_on.set()
        other.wait_logged("mail_claim_taken_from_an_ended_mailer", timeout=30)
        done = events.wait_for(job.id, "job.succeeded", timeout=30)
    assert len(held.datas) == 1
    assert [e["attempt"] for e in done] == [1]
    assert not events.of(job.id, "job.retrying")
