"""HTTP Basic for the sink's view and API, as Mailpit's MP_UI_AUTH: `MAILSINK_UI_AUTH=
user:password` asks for it on every route but `/healthz` (compose's health check).

Off when the setting is empty (the sink listens on loopback by default) or AUTH_DISABLED is
set. The user and the password are each compared in constant time, both always.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import basic_credentials
from shared.config import Settings
from shared.log import get_logger

log = get_logger(__name__)

OPEN_PATHS = frozenset({"/healthz"})
REALM = "jobsuite mailsink"


@dataclass(frozen=True)
class Credentials:
    user: bytes
    password: bytes

    @classmethod
    def parse(cls, setting: str) -> Credentials | None:
        """`user:password` (checked by shared.config), or None for no check."""
        if not setting:
            return None
        user, _, password = setting.partition(":")
        return cls(user.encode(), password.encode())

    def match(self, authorization: bytes | None) -> bool:
        """Whether an `Authorization` header value carries these credentials."""
        scheme, _, token = (authorization or b"").partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            pair = basic_credentials(token)
        except ValueError:  # not base64
            pair = None
        user, password = pair if pair is not None else (b"", b"")
        user_ok = hmac.compare_digest(user, self.user)
        password_ok = hmac.compare_digest(password, self.password)
        return pair is not None and user_ok and password_ok


def credentials_from(settings: Settings) -> Credentials | None:
    """MAILSINK_UI_AUTH's credentials, unless AUTH_DISABLED turns every check off."""
    if settings.auth_disabled:
        log.warning("mail_view_open_auth_disabled", reason="AUTH_DISABLED is set")
        return None
    return Credentials.parse(settings.mailsink_ui_auth)


class BasicAuth:
    """ASGI middleware: 401 with `WWW-Authenticate` unless the request carries the
    credentials; `OPEN_PATHS` pass."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.credentials.match(headers.get(b"authorization")):
            await self.app(scope, receive, send)
            return
        body = b'{"detail":"the mail view needs a user and password (HTTP Basic)"}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
