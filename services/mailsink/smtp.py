"""The sink's SMTP side: an aiosmtpd handler that stores each message once, and the chaos
hook's answers, served on the caller's event loop."""

from __future__ import annotations

import asyncio
import re
import weakref
from functools import partial

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.mailsink.chaos import Chaos, ChaosRule
from services.mailsink.store import MailStore
from services.mailsink.views import ENVELOPE_FROM, ENVELOPE_TO
from shared.log import get_logger

log = get_logger(__name__)
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f]")
SERVER_NAME = "mailsink"


class SinkHandler:
    def __init__(self, store: MailStore, chaos: Chaos) -> None:
        self.store = store
        self.chaos = chaos
        # The chaos rule each doomed transaction fails with, until the envelope is dropped.
        self._doomed: weakref.WeakKeyDictionary[Envelope, ChaosRule] = weakref.WeakKeyDictionary()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        rule = self.chaos.take()
        if rule is not None:
            log.info("chaos_transaction", code=rule.code, on=rule.on)
            if rule.on == "mail":
                return rule.reply()
            self._doomed[envelope] = rule
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        rule = self._doomed.get(envelope)
        if rule is not None and rule.on == "rcpt":
            return rule.reply()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rule = self._doomed.pop(envelope, None)
        if rule is not None:
            return rule.reply()
        raw = _trace_headers(envelope) + (envelope.original_content or b"")
        try:
            delivery = await asyncio.to_thread(self.store.deliver, raw)
        except OSError as e:
            log.error("message_not_stored", error=str(e))
            return "451 4.3.0 Cannot store the message now"
        if delivery.duplicate:
            log.info("duplicate_message_id_dropped", held_as=delivery.key)
            return "250 2.0.0 OK: a message with this Message-ID is held already, not stored"
        log.info("message_stored", id=delivery.key, recipients=len(envelope.rcpt_tos))
        return f"250 2.0.0 OK: stored as {delivery.key}"


def _trace_headers(envelope: Envelope) -> bytes:
    """The envelope, as a receiving server records it (Bcc recipients appear only here)."""
    sender = _safe(envelope.mail_from or "")
    recipients = ", ".join(_safe(r) for r in envelope.rcpt_tos)
    return f"{ENVELOPE_FROM}: {sender}\r\n{ENVELOPE_TO}: {recipients}\r\n".encode()


def _safe(address: str) -> str:
    # An SMTP command line ends at CRLF, but a bare LF or NUL can still ride inside it.
    return _UNSAFE_IN_HEADER.sub("?", address)


async def start_smtp_server(
    handler: SinkHandler, host: str, port: int, data_size_limit: int
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    factory = partial(
        SMTP,
        handler,
        hostname=SERVER_NAME,  # not socket.getfqdn(): that can stall on reverse DNS
        ident="jobsuite mailsink",
        data_size_limit=data_size_limit,
        enable_SMTPUTF8=True,
        loop=loop,
    )
    return await loop.create_server(factory, host, port)
