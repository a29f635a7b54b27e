"""Who is calling: the API key of a request, checked against the key store.

The gateway and the audit read API put `RequireKey` in front of their routes. It answers
401 (with `WWW-Authenticate` and a JSON body naming why: no key, a malformed header, an
unknown, revoked or expired key) before any route or body parsing runs, and hands the
routes a `Caller` in `request.state.caller`. Health, metrics and the API docs stay open.
`AUTH_DISABLED=true` makes every caller an anonymous admin (`ANYONE`).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared import apidocs
from shared.errors import StateError
from shared.log import get_logger
from shared.state.keys import ApiKey, ApiKeyStore, KeyLimits

log = get_logger(__name__)
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
# The API docs' scripts and styles: files of a public package, the same for everyone.
OPEN_PREFIXES = (f"{apidocs.ASSETS}/",)
BEARER_CHALLENGE = "Bearer"
BASIC_CHALLENGE = 'Basic realm="jobsuite audit"'
_MAX_HEADER = 1024  # a key is 47 characters; anything far longer is not one


@dataclass(frozen=True)
class Caller:
    name: str | None  # the key's name: the `client` of the jobs it submits; None: no keys
    admin: bool
    limits: KeyLimits | None = None  # None: no per-key limits (AUTH_DISABLED)

    def may_see(self, owner: str | None) -> bool:
        """A client sees its own jobs; a job without a client is for admins only."""
        return self.admin or (owner is not None and owner == self.name)


ANYONE = Caller(name=None, admin=True)


class Unauthorized(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # missing_key, malformed_header, unknown_key, revoked_key, …
        self.message = message


def basic_credentials(token: bytes) -> tuple[bytes, bytes] | None:
    """The (user, password) of an HTTP Basic token (`base64(user:password)`), None when it
    holds no colon; ValueError when it is not base64."""
    decoded = base64.b64decode(token.strip(), validate=True)  # binascii.Error: a ValueError
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def _basic_password(token: str) -> str:
    """The password of HTTP Basic credentials, "" when they hold no colon; Unauthorized when
    they are not base64 of UTF-8 text."""
    try:
        pair = basic_credentials(token.encode())
        if pair is None:
            return ""
        pair[0].decode("utf-8")
        return pair[1].decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise Unauthorized(
            "malformed_header",
            "malformed Authorization header: Basic credentials are not base64 of user:password",
        ) from None


def presented_key(header: str | None, *, basic: bool) -> str:
    """The key in an Authorization header: `Bearer <key>`, or with `basic`, HTTP Basic with
    the key as the password (what a browser sends). Unauthorized when absent or malformed."""
    if header is None or not header.strip():
        how = "Bearer <key> (or HTTP Basic, the key as password)" if basic else "Bearer <key>"
        raise Unauthorized("missing_key", f"no API key: send Authorization: {how}")
    if len(header) > _MAX_HEADER:
        raise Unauthorized("malformed_header", "malformed Authorization header: too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value and " " not in value:
        return value
    if basic and scheme.lower() == "basic" and value:
        password = _basic_password(value)
        if password:
            return password
    schemes = "Bearer or Basic" if basic else "Bearer"
    raise Unauthorized(
        "malformed_header", f"malformed Authorization header: expected {schemes} and one key"
    )


def identify(store: ApiKeyStore, header: str | None, *, basic: bool = False) -> Caller:
    """The caller a request's Authorization header names; Unauthorized when it names none
    that may be used now."""
    secret = presented_key(header, basic=basic)
    key = store.authenticate(secret)
    if key is None:
        raise Unauthorized("unknown_key", "unknown API key")
    refusal = key.refusal(datetime.now(UTC))
    if refusal == "revoked":
        raise Unauthorized("revoked_key", f"the API key {key.name!r} was revoked")
    if refusal == "expired":
        raise Unauthorized("expired_key", f"the API key {key.name!r} has expired")
    return Caller(key.name, key.admin, key.limits)


class WithServiceKey:
    """A key store that also takes one shared secret, set by the operator on both sides
    (`AUDIT_API_KEY` on the audit and on the gateway), as an admin caller named `name`: in
    compose the gateway can read the audit without anyone making a key for it first."""

    def __init__(self, store: ApiKeyStore, secret: str, name: str) -> None:
        self._store = store
        self._secret = secret.encode()
        self._key = ApiKey(name=name, admin=True, created_at=datetime.now(UTC))

    def authenticate(self, secret: str) -> ApiKey | None:
        if hmac.compare_digest(secret.encode(), self._secret):
            return self._key
        return self._store.authenticate(secret)

    def __getattr__(self, name: str) -> Any:  # create, find, list, revoke, close
        return getattr(self._store, name)


def caller_of(request: Request) -> Caller:
    """The caller `RequireKey` found for this request (ANYONE with AUTH_DISABLED)."""
    caller: Caller = getattr(request.state, "caller", ANYONE)
    return caller


class RequireKey:
    """ASGI middleware: every request outside `open_paths` needs a usable key (an admin one
    with `admin_only`), else 401 (403 for a client key where an admin one is needed).
    `store` None (AUTH_DISABLED) lets everything through. `after` may refuse a known caller
    (the gateway's rate limit) with a response of its own."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: ApiKeyStore | None,
        challenge: str = BEARER_CHALLENGE,
        basic: bool = False,
        admin_only: bool = False,
        open_paths: Collection[str] = OPEN_PATHS,
        open_prefixes: tuple[str, ...] = OPEN_PREFIXES,
        after: Callable[[Scope, Caller], JSONResponse | None] | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.challenge = challenge
        self.basic = basic
        self.admin_only = admin_only
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes
        self.after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.store is None or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        refused = self._check(scope)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)

    def _check(self, scope: Scope) -> JSONResponse | None:
        assert self.store is not None
        header = Headers(scope=scope).get("authorization")
        try:
            caller = identify(self.store, header, basic=self.basic)
        except Unauthorized as e:
            return JSONResponse(
                {"detail": e.message, "reason": e.reason},
                401,
                headers={"WWW-Authenticate": self.challenge},
            )
        except StateError as e:
            log.error("key_store_unavailable", error=str(e))
            return JSONResponse(
                {"detail": "the API key store is unavailable", "reason": "key_store_unavailable"},
                503,
                headers={"Retry-After": "5"},
            )
        if self.admin_only and not caller.admin:
            return JSONResponse(
                {
                    "detail": f"the API key {caller.name!r} is not an admin key",
                    "reason": "not_admin",
                },
                403,
            )
        scope.setdefault("state", {})["caller"] = caller
        return self.after(scope, caller) if self.after else None


def warn_if_disabled(disabled: bool, service: str, store: ApiKeyStore | None = None) -> None:
    """Say at start that no key is checked, or that no key could pass the check yet."""
    now = datetime.now(UTC)
    if store is not None and not any(k.refusal(now) is None for k in store.list()):
        log.warning(
            "no_api_keys",
            service=service,
            note="every request will be a 401: make a key with `jobsuite keys create NAME"
            " --admin` (`make run` makes one)",
        )
    if disabled:
        log.warning(
            "auth_disabled",
            service=service,
            note="AUTH_DISABLED=true: every caller is an admin; only for a trusted single-user"
            " machine",
        )
