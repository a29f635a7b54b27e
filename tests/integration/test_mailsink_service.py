"""The mail sink as a real process: SMTP in, Maildir on disk, HTTP out, chaos, shutdown."""

from __future__ import annotations

import json
import signal
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.conftest import SpawnFn
from tests.support.mailsink import MailSink, start_mailsink

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


@pytest.fixture
def sink(spawn: SpawnFn, tmp_path: Path) -> MailSink:
    return start_mailsink(spawn, tmp_path / "mail", chaos_api=True)


def mail(message_id: str, subject: str = "Report") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "a@x.com", "b@y.com", subject, message_id
    m.set_content("See attached.")
    m.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    return m


def send(sink: MailSink, m: EmailMessage, to: list[str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as smtp:
        smtp.send_message(m, to_addrs=to)


def test_a_mail_lands_in_the_maildir_and_its_attachment_is_served_intact(sink: MailSink) -> None:
    send(sink, mail("<one@test>"), ["b@y.com", "hidden@z.com"])
    (summary,) = sink.wait_for_messages(1)
    assert summary["message_id"] == "<one@test>"
    assert summary["envelope_to"] == ["b@y.com", "hidden@z.com"]
    assert summary["attachments"] == ["report.pdf"]
    assert len(sink.maildir_files()) == 1
    assert sink.attachment(summary["id"], "report.pdf").content == PDF
    assert b"Subject: Report" in sink.raw(summary["id"])


def test_a_duplicate_message_id_is_dropped_also_after_a_restart(
    spawn: SpawnFn, sink: MailSink, tmp_path: Path
) -> None:
    send(sink, mail("<same@test>", "first"))
    send(sink, mail("<same@test>", "second"))  # answered 250: no exception
    assert [m["subject"] for m in sink.messages()] == ["first"]
    sink.process.wait_logged("duplicate_message_id_dropped")

    sink.process.signal(signal.SIGTERM)
    assert sink.process.wait(15) == 0
    restarted = start_mailsink(spawn, tmp_path / "mail")
    send(restarted, mail("<same@test>", "third"))
    assert [m["subject"] for m in restarted.messages()] == ["first"]
    assert len(restarted.maildir_files()) == 1


def test_chaos_451_twice_then_the_mail_is_accepted(sink: MailSink) -> None:
    sink.set_chaos(451, times=2)
    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(sink, mail("<retry@test>"))
        assert refused.value.smtp_code == 451
    send(sink, mail("<retry@test>"))
    assert len(sink.wait_for_messages(1)) == 1


def test_chaos_from_the_environment_lasts_until_cleared(spawn: SpawnFn, tmp_path: Path) -> None:
    sink = start_mailsink(spawn, tmp_path / "mail", chaos_api=True, MAILSINK_CHAOS="550::rcpt")
    for i in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(sink, mail(f"<env{i}@test>"))
    sink.clear_chaos()
    send(sink, mail("<env-ok@test>"))
    assert [m["message_id"] for m in sink.messages()] == ["<env-ok@test>"]


def test_sigterm_exits_zero(sink: MailSink) -> None:
    sink.process.signal(signal.SIGTERM)
    assert sink.process.wait(15) == 0
    assert sink.process.logged("mailsink_stopped")


def test_a_port_in_use_is_one_clear_error_and_exit_1(
    spawn: SpawnFn, sink: MailSink, tmp_path: Path
) -> None:
    clash = spawn(
        "services.mailsink",
        MAILSINK_DIR=str(tmp_path / "other"),
        MAILSINK_SMTP_PORT=str(sink.smtp_port),
        MAILSINK_HTTP_PORT=str(sink.http_port),
    )
    assert clash.wait(15) == 1
    (line,) = clash.logged("mailsink_cannot_start")
    assert "in use" in line["error"]


def test_live_updates_stream_each_new_mail_and_end_when_the_sink_stops(sink: MailSink) -> None:
    with httpx.stream("GET", sink.url + "/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        send(sink, mail("<live@test>"))
        (summary,) = sink.wait_for_messages(1)
        assert [next(lines), next(lines)] == ["", "event: stored"]
        assert next(lines) == f'data: {{"id": "{summary["id"]}"}}'
        # An open stream does not hold the sink up: SIGTERM ends it cleanly (a stream cut off
        # by uvicorn's shutdown timeout instead would end without its last chunk: an error).
        sink.process.signal(signal.SIGTERM)
        assert sink.process.wait(15) == 0
        assert list(lines) == [""]
        cut_off = [line for line in sink.process.log_lines() if "graceful" in json.dumps(line)]
        assert cut_off == [], sink.process.tail()


def test_the_oldest_mail_goes_over_mailsink_max_messages(spawn: SpawnFn, tmp_path: Path) -> None:
    capped = start_mailsink(spawn, tmp_path / "mail", MAILSINK_MAX_MESSAGES="2")
    for n in range(3):
        send(capped, mail(f"<{n}@test>", f"mail {n}"))  # answered once stored (and trimmed)
        time.sleep(0.02)  # arrival order by file time: a tie would be decided by the key
    assert sorted(m["subject"] for m in capped.messages()) == ["mail 1", "mail 2"]
    assert len(capped.maildir_files()) == 2
