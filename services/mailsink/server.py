"""Running the sink: the SMTP server and the HTTP view on one event loop, until a signal.

SIGTERM or SIGINT: uvicorn finishes its requests, the SMTP server closes, the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from services.mailsink.api import create_app
from services.mailsink.auth import credentials_from
from services.mailsink.chaos import Chaos, ChaosRule
from services.mailsink.smtp import SinkHandler, start_smtp_server
from services.mailsink.store import MailStore
from shared.config import Settings
from shared.http_guard import GuardPolicy
from shared.live import Changes
from shared.log import get_logger

log = get_logger(__name__)


class MailSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop_requested = False
        self._http: uvicorn.Server | None = None
        self._changes = Changes()

    def install_signal_handlers(self) -> None:
        # uvicorn takes SIGTERM/SIGINT over while it serves, then restores these and raises
        # the signal again: ours just asks to stop, so that ends in exit 0, not a kill.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_requested = True
        if self._http is not None:
            self._http.should_exit = True

    async def run(self) -> int:
        s = self.settings
        # The HTTP socket is bound first so a port in use fails before anything starts.
        http_socket = _listening_socket(s.mailsink_host, s.mailsink_http_port)
        store = MailStore(s.mailsink_dir, s.mailsink_max_messages)
        chaos = Chaos(ChaosRule.from_spec(s.mailsink_chaos))
        handler = SinkHandler(store, chaos)
        # Room for attachments of MAX_MAIL_BYTES after base64 (4/3) and the headers.
        smtp = await start_smtp_server(
            handler, s.mailsink_host, s.mailsink_smtp_port, 2 * s.max_mail_bytes
        )
        credentials = credentials_from(s)
        app = create_app(
            store,
            chaos,
            credentials=credentials,
            chaos_api=s.mailsink_chaos_api,
            guard=GuardPolicy.of(s.allowed_hosts, s.cors_origins),
            changes=self._changes,
        )
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        self._http = _Server(config, on_shutdown=self._changes.close)
        log.info(
            "mailsink_started",
            smtp=f"{s.mailsink_host}:{s.mailsink_smtp_port}",
            http=f"http://{s.mailsink_host}:{s.mailsink_http_port}/",
            maildir=str(store.root),
            messages=len(store),
            max_messages=store.max_messages or "unlimited",
            chaos=chaos.state(),
            chaos_api=s.mailsink_chaos_api,
            ui_auth=credentials is not None,
        )
        try:
            if not self._stop_requested:
                await self._http.serve(sockets=[http_socket])
        finally:
            smtp.close()
            await smtp.wait_closed()
            http_socket.close()
        log.info("mailsink_stopped")
        return 0


class _Server(uvicorn.Server):
    """uvicorn's server, ending the open live-update streams as it shuts down: it waits for
    every open response, and a stream of server-sent events never ends by itself."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.on_shutdown()
        await super().shutdown(sockets)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def quiet_library_logs() -> None:
    # aiosmtpd logs every command at INFO under "mail.log"; our handler logs what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def run(settings: Settings) -> int:
    quiet_library_logs()
    sink = MailSink(settings)
    sink.install_signal_handlers()
    try:
        return asyncio.run(sink.run())
    except OSError as e:  # a port in use, a Maildir that cannot be made
        log.error("mailsink_cannot_start", error=str(e))
        return 1
