"""The sink's SMTP side in this process: stores once per Message-ID, records the envelope,
and answers chaos codes at the chosen stage for the chosen number of transactions."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import Envelope

from services.mailsink.chaos import Chaos, ChaosRule
from services.mailsink.smtp import SinkHandler, _trace_headers
from services.mailsink.store import MailStore
from tests.support.smtp_server import LocalSmtpServer


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, MailStore, Chaos]]:
    store, chaos = MailStore(tmp_path / "mail"), Chaos()
    with LocalSmtpServer(SinkHandler(store, chaos), enable_SMTPUTF8=True) as server:
        yield server.port, store, chaos


def message(message_id: str = "<m1@test>") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "a@x.com", "b@y.com", "hi", message_id
    m.set_content("hello")
    return m


def send(port: int, m: EmailMessage, to: list[str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(m, to_addrs=to)


def test_a_message_is_stored_with_its_envelope_recorded(
    sink: tuple[int, MailStore, Chaos],
) -> None:
    port, store, _ = sink
    send(port, message(), ["b@y.com", "hidden@z.com"])
    (key,) = store.keys()
    stored = store.get(key)
    assert stored is not None
    assert stored.message["X-Mailsink-Envelope-From"] == "a@x.com"
    assert stored.message["X-Mailsink-Envelope-To"] == "b@y.com, hidden@z.com"
    assert stored.message["Message-ID"] == "<m1@test>"


def test_a_duplicate_message_id_is_answered_250_and_not_stored(
    sink: tuple[int, MailStore, Chaos],
) -> None:
    port, store, _ = sink
    send(port, message("<dup@test>"))
    send(port, message("<dup@test>"))  # no exception: the server said 250
    assert len(store) == 1


@pytest.mark.parametrize(
    ("on", "error"),
    [
        ("mail", smtplib.SMTPSenderRefused),
        ("rcpt", smtplib.SMTPRecipientsRefused),
        ("data", smtplib.SMTPDataError),
    ],
)
def test_chaos_answers_its_code_at_the_chosen_stage_then_stops(
    sink: tuple[int, MailStore, Chaos], on: str, error: type[Exception]
) -> None:
    port, store, chaos = sink
    chaos.set(ChaosRule(451, times=2, on=on))  # type: ignore[arg-type]
    for attempt in range(2):
        with pytest.raises(error) as raised:
            send(port, message(f"<c{attempt}@test>"), ["b@y.com", "c@y.com"])
        assert "451" in str(raised.value)
    send(port, message("<c-ok@test>"), ["b@y.com", "c@y.com"])
    assert len(store) == 1
    assert chaos.state() == {"active": False}


def test_chaos_without_a_count_lasts_until_cleared(sink: tuple[int, MailStore, Chaos]) -> None:
    port, store, chaos = sink
    chaos.set(ChaosRule(550))
    for i in range(3):
        with pytest.raises(smtplib.SMTPDataError):
            send(port, message(f"<x{i}@test>"))
    chaos.clear()
    send(port, message("<after@test>"))
    assert len(store) == 1


def test_control_characters_in_envelope_addresses_cannot_add_a_header() -> None:
    # aiosmtpd already ends a command at a bare LF; the trace headers do not rely on it.
    envelope = Envelope()
    envelope.mail_from = "a@x.com\rX-Evil: 1"
    envelope.rcpt_tos = ["b@y.com\nX-Evil: 2", "c@y.com"]
    assert _trace_headers(envelope) == (
        b"X-Mailsink-Envelope-From: a@x.com?X-Evil: 1\r\n"
        b"X-Mailsink-Envelope-To: b@y.com?X-Evil: 2, c@y.com\r\n"
    )


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("", None),
        ("451", ChaosRule(451)),
        ("451:2", ChaosRule(451, 2)),
        ("550:1:rcpt", ChaosRule(550, 1, "rcpt")),
        ("421::mail", ChaosRule(421, None, "mail")),
    ],
)
def test_chaos_rules_from_the_environment(spec: str, rule: ChaosRule | None) -> None:
    assert ChaosRule.from_spec(spec) == rule


@pytest.mark.parametrize(("code", "times"), [(250, None), (600, None), (451, 0)])
def test_chaos_rules_must_be_an_error_code_and_a_positive_count(
    code: int, times: int | None
) -> None:
    with pytest.raises(ValueError):
        ChaosRule(code, times)
