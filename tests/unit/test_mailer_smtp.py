"""The smtplib sender against a real aiosmtpd server in this process: every SMTP outcome
becomes the right job outcome (4xx, timeouts, refusals -> transient; 5xx -> permanent)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from services.mailer.smtp import SmtpConfig, SmtplibSender, _quit_quietly, job_error_for
from shared.errors import PermanentJobError, TransientJobError
from tests.support.smtp_server import LocalSmtpServer


class ScriptedHandler:
    """Accepts everything unless told to answer a code at MAIL, RCPT (per address) or DATA."""

    def __init__(
        self, mail: str | None = None, rcpt: dict[str, str] | None = None, data: str | None = None
    ) -> None:
        self.mail, self.rcpt, self.data = mail, rcpt or {}, data
        self.received: list[Envelope] = []

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.mail:
            return self.mail
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data:
            return self.data
        self.received.append(envelope)
        return "250 OK"


def message() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "jobs@example.com", "a@example.com", "hi"
    m["Message-ID"] = "<test@jobsuite>"
    m.set_content("hello")
    return m


def send(port: int, recipients: list[str] | None = None, **config: Any) -> dict[str, Any]:
    sender = SmtplibSender(SmtpConfig("127.0.0.1", port, timeout_s=5, **config))
    with sender.session() as smtp:
        return smtp.send(message(), "jobs@example.com", recipients or ["a@example.com"])


@pytest.fixture
def unused_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_an_accepted_mail_reaches_the_server_with_every_envelope_recipient() -> None:
    handler = ScriptedHandler()
    with LocalSmtpServer(handler) as server:
        refused = send(server.port, ["a@example.com", "hidden@example.com"])
    assert refused == {}
    (envelope,) = handler.received
    assert envelope.mail_from == "jobs@example.com"
    assert envelope.rcpt_tos == ["a@example.com", "hidden@example.com"]
    assert b"Message-ID: <test@jobsuite>" in (envelope.original_content or b"")


@pytest.mark.parametrize(
    ("script", "error", "kind"),
    [
        ({"data": "451 4.3.0 try later"}, TransientJobError, "smtp_4xx"),
        ({"data": "554 5.6.0 content rejected"}, PermanentJobError, "smtp_5xx"),
        ({"mail": "421 4.7.0 too busy"}, TransientJobError, "smtp_4xx"),
        ({"mail": "550 5.7.1 sender refused"}, PermanentJobError, "smtp_5xx"),
        ({"rcpt": {"a@example.com": "550 5.1.1 no such user"}}, PermanentJobError, "smtp_5xx"),
        ({"rcpt": {"a@example.com": "452 4.2.2 mailbox full"}}, TransientJobError, "smtp_4xx"),
    ],
)
def test_smtp_answers_map_to_transient_or_permanent(
    script: dict[str, Any], error: type[Exception], kind: str
) -> None:
    with LocalSmtpServer(ScriptedHandler(**script)) as server, pytest.raises(error) as raised:
        send(server.port)
    assert raised.value.kind == kind  # type: ignore[attr-defined]


def test_every_recipient_refused_is_transient_when_any_refusal_is_temporary() -> None:
    script = {"a@example.com": "550 5.1.1 no such user", "b@example.com": "451 4.3.0 later"}
    with (
        LocalSmtpServer(ScriptedHandler(rcpt=script)) as server,
        pytest.raises(TransientJobError) as raised,
    ):
        send(server.port, ["a@example.com", "b@example.com"])
    assert "a@example.com: 550" in str(raised.value)
    assert "b@example.com: 451" in str(raised.value)


def test_some_recipients_refused_is_a_sent_mail_with_the_refusals_returned() -> None:
    handler = ScriptedHandler(rcpt={"gone@example.com": "550 5.1.1 no such user"})
    with LocalSmtpServer(handler) as server:
        refused = send(server.port, ["a@example.com", "gone@example.com"])
    assert refused == {"gone@example.com": (550, "5.1.1 no such user")}
    assert [e.rcpt_tos for e in handler.received] == [["a@example.com"]]


def test_a_server_that_is_down_is_transient(unused_port: int) -> None:
    with pytest.raises(TransientJobError) as raised:
        send(unused_port)
    assert raised.value.kind == "smtp_down"


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as silent:  # listens, so connect succeeds, but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        sender = SmtplibSender(SmtpConfig("127.0.0.1", silent.getsockname()[1], timeout_s=0.3))
        with pytest.raises(TransientJobError) as raised, sender.session():
            pass
    assert raised.value.kind == "smtp_timeout"


def test_starttls_required_but_not_offered_is_permanent_and_nothing_is_sent() -> None:
    handler = ScriptedHandler()
    with LocalSmtpServer(handler) as server, pytest.raises(PermanentJobError) as raised:
        send(server.port, starttls=True)
    assert raised.value.kind == "smtp_unsupported"
    assert "STARTTLS" in str(raised.value)
    assert handler.received == []


class OnePassword:
    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"u", b"pw")
        return AuthResult(success=ok, handled=False)  # handled=True: "I answered already"


@pytest.mark.parametrize(("password", "sent"), [("pw", True), ("wrong", False)])
def test_login_with_the_configured_credentials(password: str, sent: bool) -> None:
    handler = ScriptedHandler()
    options = {"authenticator": OnePassword(), "auth_require_tls": False}
    with LocalSmtpServer(handler, **options) as server:
        if sent:
            send(server.port, user="u", password=password)
        else:
            with pytest.raises(PermanentJobError) as raised:
                send(server.port, user="u", password=password)
            assert "535" in str(raised.value)
    assert len(handler.received) == int(sent)


def test_login_against_a_server_without_auth_is_permanent() -> None:
    with LocalSmtpServer(ScriptedHandler()) as server, pytest.raises(PermanentJobError) as raised:
        send(server.port, user="u", password="pw")
    assert raised.value.kind == "smtp_unsupported"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (smtplib.SMTPServerDisconnected("gone"), TransientJobError),
        (ConnectionRefusedError(111, "refused"), TransientJobError),
        (TimeoutError("timed out"), TransientJobError),
        (socket.gaierror(-2, "Name or service not known"), TransientJobError),
        (ssl.SSLCertVerificationError("self-signed certificate"), PermanentJobError),
        (smtplib.SMTPConnectError(554, b"no service"), PermanentJobError),
        (smtplib.SMTPHeloError(421, b"closing"), TransientJobError),
    ],
)
def test_job_error_for_each_failure(error: Exception, outcome: type[Exception]) -> None:
    assert type(job_error_for(error)) is outcome  # type: ignore[arg-type]


def test_quit_after_the_connection_dropped_is_silent() -> None:
    smtp = smtplib.SMTP()  # never connected: QUIT raises SMTPServerDisconnected
    _quit_quietly(smtp)
    assert smtp.sock is None


def test_the_password_is_not_in_the_configs_repr() -> None:
    assert "hunter2" not in repr(SmtpConfig("h", 25, user="u", password="hunter2"))
