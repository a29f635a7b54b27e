"""HTTP hygiene for every HTTP service (gateway, audit read API, mail view): an ASGI middleware.

- `Host` must be one of `ALLOWED_HOSTS` (the port aside): a page on another name whose DNS
  now points at us (DNS rebinding) gets 400 `host_not_allowed`, not our data.
- A state-changing request (POST, PUT, PATCH, DELETE) from a foreign origin is 403
  `origin_not_allowed`: an `Origin` other than the request's own scheme, host and port and
  not in `CORS_ORIGINS`, or `Sec-Fetch-Site: cross-site`. Browsers send these; a form on
  https://evil.example posting to us is refused, a CLI (which sends neither) is not.
- CORS only for the origins in `CORS_ORIGINS`: their preflights are answered, their
  responses carry `Access-Control-Allow-Origin`; nobody else gets any CORS header.
- Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
  `X-Frame-Options: DENY`; every HTML page a strict CSP unless the app set its own.

Pure ASGI (no framework import): shared code must not depend on a service's stack.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
STRICT_CSP = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
# /docs (Swagger UI) and /redoc (shared/apidocs.py) load their files from this origin; Swagger
# UI starts with one inline script (allowed by its hash, computed from the page). Redoc builds
# its styles at run time ('unsafe-inline' for styles only: no script) and parses in a blob:
# worker; both show data: images.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_EXPOSED = "Location, Retry-After, Idempotent-Replayed, Content-Disposition"
_HOST = re.compile(
    r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<name>[^\s:\[\]/@]+))(?::(?P<port>\d{1,5}))?$"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def normalize_host(host: str) -> str:
    """A host name as compared: lower case, no trailing dot, IPv6 without brackets."""
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def split_host(header: str) -> tuple[str, int | None] | None:
    """`Host` header value → (host, port); None when it is not a host[:port]."""
    match = _HOST.match(header.strip())
    if match is None:
        return None
    host = match.group("v6") or match.group("name")
    port = int(match.group("port")) if match.group("port") else None
    return normalize_host(host), port


def normalize_origin(origin: str) -> str | None:
    """`scheme://host[:port]` with the default port left out, lower case; None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    shown_port = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard allows. The default: loopback names, no CORS."""

    allowed_hosts: frozenset[str] = frozenset(LOOPBACK_HOSTS)
    cors_origins: frozenset[str] = frozenset()
    docs_paths: frozenset[str] = field(default=DOCS_PATHS)

    @classmethod
    def of(cls, allowed_hosts: Iterable[str], cors_origins: Iterable[str] = ()) -> GuardPolicy:
        origins = {normalize_origin(o) for o in cors_origins}
        return cls(
            allowed_hosts=frozenset(normalize_host(h) for h in allowed_hosts),
            cors_origins=frozenset(o for o in origins if o is not None),
        )


class HttpGuard:
    """The ASGI middleware; add it outermost (last) so it answers before anything else."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy | None = None) -> None:
        self.app = app
        self.policy = policy or GuardPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        origin = normalize_origin(headers.get("origin", ""))
        cors = origin if origin in self.policy.cors_origins else None
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, cors, headers.get("origin", ""))
            return
        docs = scope.get("path") in self.policy.docs_paths
        await self.app(scope, receive, _SecuredSend(send, cors, docs))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        host_header = headers.get("host")
        host = split_host(host_header) if host_header else None
        if host is None or host[0] not in self.policy.allowed_hosts:
            shown = _printable(host_header) if host_header else "(none)"
            return 400, "host_not_allowed", f"Host {shown} is not served here (ALLOWED_HOSTS)"
        if scope["method"] not in STATE_CHANGING:
            return None
        raw_origin = headers.get("origin")
        origin = normalize_origin(raw_origin) if raw_origin is not None else None
        if origin is not None and origin in self.policy.cors_origins:
            return None
        if raw_origin is not None and origin != _own_origin(scope, host):
            return 403, "origin_not_allowed", _foreign(_printable(raw_origin))
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return 403, "origin_not_allowed", _foreign("a cross-site page (Sec-Fetch-Site)")
        return None

    async def _preflight(self, send: Send, cors: str | None, raw_origin: str) -> None:
        if cors is None:
            message = f"{_printable(raw_origin) or 'this origin'} is not in CORS_ORIGINS"
            await _answer(send, 403, "origin_not_allowed", message)
            return
        headers = [
            *_cors_headers(cors),
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-allow-headers", CORS_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
            (b"content-length", b"0"),
            *ALWAYS,
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class _SecuredSend:
    """Adds the headers to the response on its way out; for a docs page it holds the body
    back to hash the page's inline script into the CSP."""

    def __init__(self, send: Send, cors: str | None, docs: bool) -> None:
        self.send = send
        self.cors = cors
        self.docs = docs
        self.start: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            headers += [h for h in ALWAYS if h[0] not in names]
            if self.cors is not None:
                headers += [*_cors_headers(self.cors), (b"vary", b"Origin")]
                headers.append((b"access-control-expose-headers", CORS_EXPOSED.encode()))
            message = {**message, "headers": headers}
            html = _content_type(headers).startswith("text/html")
            if html and b"content-security-policy" not in names:
                if self.docs:
                    self.start = message  # sent with the body, once its scripts are known
                    return
                headers.append((b"content-security-policy", STRICT_CSP.encode()))
            await self.send(message)
            return
        if self.start is not None and message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if message.get("more_body", False):
                return
            csp = DOCS_CSP.format(hashes=_script_hashes(self.body))
            self.start["headers"].append((b"content-security-policy", csp.encode()))
            await self.send(self.start)
            self.start = None
            await self.send({"type": "http.response.body", "body": self.body})
            return
        await self.send(message)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (the first of each), as Latin-1 text."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _own_origin(scope: Scope, host: tuple[str, int | None]) -> str | None:
    scheme = scope.get("scheme", "http")
    name, port = host
    shown = f"[{name}]" if ":" in name else name
    return normalize_origin(f"{scheme}://{shown}" + (f":{port}" if port else ""))


def _foreign(who: str) -> str:
    return (
        f"a state-changing request from {who} is refused: not this service's origin"
        " and not in CORS_ORIGINS"
    )


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode("latin-1"))]


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").lower()
    return ""


def _script_hashes(body: bytes) -> str:
    hashes = []
    for script in _INLINE_SCRIPT.findall(body):
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        hashes.append(f" 'sha256-{digest}'")
    return "".join(hashes)


def _printable(text: str) -> str:
    """An untrusted header value, quoted and cut short, for an error message."""
    return json.dumps(text[:100])


async def _answer(send: Send, status: int, kind: str, message: str) -> None:
    body = json.dumps({"error": kind, "detail": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *ALWAYS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
