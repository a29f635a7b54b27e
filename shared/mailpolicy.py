"""Where mail may go: the recipient domains of `MAIL_ALLOWED_DOMAINS`, one rule for the
gateway (403 naming the address) and the mailer (the job fails, nothing is sent).

An entry is one of:
- `example.com`: exactly that domain, not the names under it;
- `*.example.com`: every name under example.com, at any depth (`a.example.com`,
  `a.b.example.com`), not example.com itself; list both for both;
- `*`: every domain name (an explicit open relay: only behind a relay that has its own
  policy);
- an IP address (`192.0.2.1`, `[192.0.2.1]`, `[IPv6:2001:db8::1]`): mail to that address
  literal. IP addresses are never matched by a wildcard, `*` included.

Unset (or empty), the only domains are the names RFC 2606 and RFC 6761 (section 6) reserve
for tests and documentation, each with every name under it: example, example.com,
example.net, example.org, test, invalid, localhost.

Domains are compared in their IDNA form, lower-case, without a final dot, on both sides. A
domain whose last label is numeric (`2130706433`, `0x7f.1`, `10.1`) is taken for an IP
address, as many resolvers would, so only an exact entry allows it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

_RESERVED = ("example", "example.com", "example.net", "example.org", "test", "invalid", "localhost")
RESERVED_TEST_DOMAINS: tuple[str, ...] = tuple(
    entry for name in _RESERVED for entry in (name, f"*.{name}")
)
ANY_DOMAIN = "*"
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


def _ip(text: str) -> str | None:
    """The IP address in `text` (`1.2.3.4`, `[1.2.3.4]`, `[IPv6:…]`), normalised; else None."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if inner[:5].lower() == "ipv6:":
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        return None


def normal_domain(domain: str) -> str:
    """`domain` lower-case, IDNA-encoded, without a final dot; ValueError if it is no name."""
    text = domain.strip().lower().removesuffix(".")
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{domain!r} is not a domain name") from None
    labels = ascii_form.split(".")
    if not ascii_form or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{domain!r} is not a domain name")
    return ascii_form


def normal_entry(entry: str) -> str:
    """One `MAIL_ALLOWED_DOMAINS` entry in the form it is compared in, or ValueError."""
    text = entry.strip()
    if text == ANY_DOMAIN:
        return text
    if (ip := _ip(text)) is not None:
        return ip
    if text.startswith("."):
        raise ValueError(f"{entry!r}: write *{text} for the names under {text[1:]}")
    wildcard = text.startswith("*.")
    name = normal_domain(text[2:] if wildcard else text)  # refuses a * anywhere else
    return f"*.{name}" if wildcard else name


def parse_entries(raw: str) -> tuple[str, ...]:
    """The comma-separated entries of `MAIL_ALLOWED_DOMAINS`; empty: the reserved names."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        return RESERVED_TEST_DOMAINS
    return tuple(dict.fromkeys(normal_entry(part) for part in parts))


@dataclass(frozen=True)
class DomainPolicy:
    """The allowed recipient domains, from normalised entries (`normal_entry`)."""

    entries: tuple[str, ...] = RESERVED_TEST_DOMAINS

    def allows_domain(self, domain: str) -> bool:
        ip = _ip(domain)
        if ip is not None:
            return ip in self.entries
        try:
            name = normal_domain(domain)
        except ValueError:
            return False
        if _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
            return name in self.entries  # an IP address in disguise: only when listed
        if name in self.entries or ANY_DOMAIN in self.entries:
            return True
        return any(e.startswith("*.") and name.endswith(e[1:]) for e in self.entries)

    def allows(self, address: str) -> bool:
        """Whether mail may go to `address` (`user@domain`, no display name)."""
        _, at, domain = address.rpartition("@")
        return bool(at) and self.allows_domain(domain)

    def first_refused(self, addresses: Iterable[str]) -> str | None:
        return next((a for a in addresses if not self.allows(a)), None)

    def describe(self) -> str:
        """What a refused domain is, to finish "its domain x.com is …"."""
        if self.entries == RESERVED_TEST_DOMAINS:
            return "not a reserved test domain (MAIL_ALLOWED_DOMAINS is unset: only those)"
        return "not in MAIL_ALLOWED_DOMAINS"


RESERVED_ONLY = DomainPolicy()
