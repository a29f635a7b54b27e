"""AMQP_URL as a list of broker nodes: split, short entries completed, each one checked.

`amqp://u:p@node1:5672/vh,amqp://u:p@node2:5672/vh` lists two nodes, tried in that order.
A later entry may be short, `host[:port]` (IPv6 in brackets): it takes everything else
from the first entry (scheme, user and password, vhost, query options), and its port too
when it gives none, so `amqp://u:p@node1:5672/vh,node2,node3:5673` is three full URLs.
Commas split entries except inside `{…}` (pika's `ssl_options={…}` query option); a comma in
a user or password is written `%2C`. Pure: no pika here (connecting is `shared.amqp`'s).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SHAPE = "must look like amqp://user:pass@host:port/vhost (amqps:// for TLS)"
# A short entry: a host name or address, or [IPv6], and an optional port.
_SHORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d*))?$")


def node_urls(raw: str) -> tuple[str, ...]:
    """Every node's full URL, in the order given; ValueError (finishing "AMQP_URL …",
    naming the entry when there are several) for the first entry that is not one."""
    entries = _split(raw)
    several = len(entries) > 1
    urls: list[str] = []
    for number, entry in enumerate(entries, start=1):
        try:
            if number > 1 and "://" not in entry:
                urls.append(_completed(entry, urls[0]))
            else:
                urls.append(_checked(entry))
        except ValueError as e:
            if not several:
                raise
            raise ValueError(f"entry {number} ({_masked(entry) or 'empty'}) {e}") from None
    return tuple(urls)


def host_port(url: str) -> str:
    """`host:port` of a node's URL (`[v6]:port`), its scheme's port when it gives none:
    what logs and error lines name a node by, never its user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or (5671 if parts.scheme.lower() == "amqps" else 5672)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split(raw: str) -> list[str]:
    entries, depth, start = [], 0, 0
    for i, c in enumerate(raw):
        depth += (c == "{") - (c == "}")
        if c == "," and depth <= 0:
            entries.append(raw[start:i].strip())
            start = i + 1
    entries.append(raw[start:].strip())
    return entries


def _checked(url: str) -> str:
    """One full URL: scheme amqp or amqps, a host, a port if any in range; the rest (the
    vhost, query options) is pika's to read."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number 0-65535
    except ValueError as e:
        raise ValueError(f"{SHAPE}; {e}") from None
    if parts.scheme.lower() not in ("amqp", "amqps"):
        why = "the scheme is missing" if "://" not in url else f"{parts.scheme!r} is not amqp"
        raise ValueError(f"{SHAPE}; {why}")
    if port == 0:
        raise ValueError(f"{SHAPE}; the port must be 1-65535")
    if not parts.hostname:
        raise ValueError(f"{SHAPE}; it names no host")
    return url


def _completed(entry: str, first: str) -> str:
    """A short entry `host[:port]` made a full URL from the first entry."""
    match = _SHORT.match(entry)
    if match is None:
        raise ValueError(f"{SHAPE}, or be host[:port] after the first entry")
    host, port = match.group(1), match.group(2)
    if port is not None and not 1 <= int(port or "0") <= 65535:
        raise ValueError(f"{SHAPE}; the port must be 1-65535")
    parts = urlsplit(first)
    login = parts.netloc.rpartition("@")[0]
    port = port or (str(parts.port) if parts.port else None)
    netloc = f"{login + '@' if login else ''}{host}{':' + port if port else ''}"
    return _checked(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))


_PASSWORD_IN_URL = re.compile(r"([^\s/:@]+:)[^\s/@]*@")


def _masked(entry: str) -> str:
    return _PASSWORD_IN_URL.sub(r"\1***@", entry)
