"""Parsers for the settings' environment values: raw text in, a typed value out.

A parser raises `ValueError` whose text finishes the sentence "<VARIABLE> …" (e.g. "must be an
integer"); `shared.config` turns it into one `ConfigError` line naming the variable and value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from shared import mailpolicy
from shared.amqp_url import node_urls
from shared.event_names import EVENT_NAMES

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def text(raw: str) -> str:
    return raw


def integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None


def positive_int(raw: str) -> int:
    value = integer(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def non_negative_int(raw: str) -> int:
    value = integer(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


def port(raw: str) -> int:
    value = positive_int(raw)
    if value > 65535:
        raise ValueError("must be a port number (1-65535)")
    return value


_STATE_URL_SHAPE = (
    "must be empty (SQLite files under STATE_DIR) or postgresql://user:pass@host:port/db"
)


def state_url(raw: str) -> str:
    """Where the shared state lives: empty for SQLite under STATE_DIR, or a PostgreSQL URL
    (`postgresql://` or `postgres://`), whose query options (`sslmode`, …) are psycopg's."""
    if raw == "":
        return raw
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises on a port that is not a number 0-65535
    except ValueError as e:
        raise ValueError(f"{_STATE_URL_SHAPE}; {e}") from None
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        why = "the scheme is missing" if "://" not in raw else f"{parts.scheme!r} is not postgresql"
        raise ValueError(f"{_STATE_URL_SHAPE}; {why}")
    return raw


def optional_port(raw: str) -> int | None:
    """A port number, or None for an empty value (the setting left unset)."""
    return None if raw == "" else port(raw)


def amqp_url(raw: str) -> str:
    """The broker's nodes, comma-separated, each URL checked as `shared.amqp_url` says
    (a later entry may be host[:port] only); kept as typed."""
    node_urls(raw)
    return raw


def boolean(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("must be true or false")


def choice(options: tuple[str, ...]) -> Callable[[str], str]:
    """One of `options`, case-insensitive; the value is kept lower-case."""

    def parse(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return raw.lower()

    return parse


def namespace(raw: str) -> str:
    if raw and not all(c.isalnum() or c in "-_" for c in raw):
        raise ValueError("may hold only letters, digits, '-' and '_'")
    return raw


def delays(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError("must be a comma-separated list of milliseconds") from None
    if not values or any(d <= 0 for d in values):
        raise ValueError("must list at least one positive delay in milliseconds")
    return values


_CHAOS_SPEC = re.compile(r"^[45]\d\d(:([1-9]\d*)?)?(:(mail|rcpt|data))?$")


def chaos_spec(raw: str) -> str:
    if raw and not _CHAOS_SPEC.match(raw.lower()):
        raise ValueError(
            "must look like CODE[:TIMES[:STAGE]], e.g. 451:2:rcpt, or 550::mail for every "
            "transaction (CODE 4xx or 5xx, STAGE mail, rcpt or data)"
        )
    return raw.lower()


def mail_domains(raw: str) -> tuple[str, ...]:
    try:
        return mailpolicy.parse_entries(raw)
    except ValueError as e:
        why = f"must list domains, *.domain or IP addresses, comma-separated: {e}"
        raise ValueError(why) from None


def user_password(raw: str) -> str:
    """ "" (off) or `user:password`, both parts non-empty; the user holds no colon."""
    user, colon, password = raw.partition(":")
    if raw and not (user and colon and password):
        raise ValueError("must be user:password (both non-empty), or empty for none")
    return raw


_HOST_NAME = re.compile(
    r"^(\[[0-9a-f:.]+\]|[0-9a-f:]*:[0-9a-f:.]*|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?)$"
)


def host_names(raw: str) -> tuple[str, ...]:
    """Comma-separated host names (no port); IPv6 with or without brackets."""
    names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if not names:
        raise ValueError("must list at least one host name, e.g. localhost,127.0.0.1,::1")
    bad = [n for n in names if not _HOST_NAME.match(n)]
    if bad:
        raise ValueError(f"must list host names without a port or scheme ({bad[0]!r} is not)")
    return names


_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:\d{1,5})?$")


def origins(raw: str) -> tuple[str, ...]:
    """Comma-separated web origins, `scheme://host[:port]`."""
    found = tuple(part.strip().lower().rstrip("/") for part in raw.split(",") if part.strip())
    bad = [o for o in found if not _ORIGIN.match(o)]
    if bad:
        raise ValueError(f"must list origins like https://app.example:8443 ({bad[0]!r} is not)")
    return found


def signing_key(raw: str) -> str:
    """Empty (no signing), or a secret long enough not to be guessed."""
    if raw and len(raw) < 32:
        raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    return raw


# Who may publish which events: `user=event,event;user=event`. "*" is every event.
PublisherRights = tuple[tuple[str, frozenset[str]], ...]
_PUBLISHERS_SHAPE = (
    "must look like user=event,event;user=event (e.g. gateway=job.submitted,job.rejected)"
)


def publishers(raw: str) -> PublisherRights:
    """AUDIT_PUBLISHERS: broker user → the events it may send; empty: record only."""
    known = set(EVENT_NAMES)
    rights: dict[str, frozenset[str]] = {}
    for entry in (e.strip() for e in raw.split(";")):
        if not entry:
            continue
        user, sep, listed = (part.strip() for part in entry.partition("="))
        if not sep or not user or any(c.isspace() or c in ",=" for c in user):
            raise ValueError(f"{_PUBLISHERS_SHAPE}, and {entry!r} does not")
        if user in rights:
            raise ValueError(f"names the user {user!r} twice")
        events = frozenset(e.strip() for e in listed.split(",") if e.strip())
        if not events:
            raise ValueError(f"gives {user!r} no events (leave the user out to allow nothing)")
        unknown = sorted(events - known - {"*"})
        if unknown:
            names = ", ".join(sorted(known))
            raise ValueError(
                f"names an unknown event {unknown[0]!r} for {user!r} (known: {names}, *)"
            )
        rights[user] = events
    return tuple(sorted(rights.items()))


def broker_users(raw: str) -> tuple[tuple[str, str], ...]:
    """BROKER_USERS: `role:password` pairs, separated by spaces or new lines (which roles
    exist is checked by `jobsuite broker-users`, the one command that reads it)."""
    users: dict[str, str] = {}
    for entry in raw.split():
        role, sep, password = entry.partition(":")
        if not sep or not password:
            raise ValueError("must list role:password pairs separated by spaces")
        if role in users:
            raise ValueError(f"names the role {role!r} twice")
        users[role] = password
    return tuple(users.items())
