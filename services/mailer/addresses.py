"""Recipient and header checks: one address per entry, nothing that could start a new header.

Each entry passes the same narrow rules the gateway applies (`shared.mailaddr`), then the
standard library's own address parser, which must find exactly one address and no defect.
Every header of a mail is built from the parsed `Address` objects and checked strings here,
never from the raw job text, so a job cannot add recipients or headers of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from typing import cast

from shared import mailaddr
from shared.errors import PermanentJobError
from shared.jobtypes.mail import MailLimits, MailParams

_registry = HeaderRegistry()


@dataclass(frozen=True)
class Recipients:
    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()

    def envelope(self) -> list[str]:
        """Every address the server is asked to deliver to, Bcc included, each once."""
        seen: set[str] = set()
        unique = []
        for address in (*self.to, *self.cc, *self.bcc):
            if address.addr_spec.lower() not in seen:
                seen.add(address.addr_spec.lower())
                unique.append(address.addr_spec)
        return unique


def header_value(value: str, field: str) -> str:
    """Return `value` if it cannot break out of its header line, else refuse the job."""
    bad = mailaddr.LINE_BREAKING.search(value)
    if bad:
        raise PermanentJobError(
            f"{field} holds a line break or control character ({bad.group()!r}): refused",
            kind="header_injection",
        )
    return value


def mail_address(entry: str, field: str) -> Address:
    """Exactly one plain address (`a@x.com` or `Name <a@x.com>`), else PermanentJobError."""
    header_value(entry, field)
    try:
        mailaddr.parse_address(entry)
    except ValueError as e:
        raise _invalid(field, entry, str(e)) from None
    try:
        # An address header, whatever the field: the registry makes "to" an AddressHeader.
        parsed = _registry("to", entry)
        header = cast(AddressHeader, parsed)
        addresses, groups, defects = header.addresses, header.groups, parsed.defects
    except Exception:  # CPython's parser has raised IndexError ("a@") and others on odd input
        raise _invalid(field, entry, "is not an address") from None
    if len(addresses) != 1:
        found = "no address" if not addresses else f"{len(addresses)} addresses"
        raise _invalid(field, entry, f"holds {found}; give exactly one per entry")
    if defects or any(group.display_name is not None for group in groups):
        raise _invalid(field, entry, "is not a single well-formed address")
    address = addresses[0]
    like_an_address = mailaddr.ADDRESS_LIKE.search
    if not address.username or not address.domain or like_an_address(address.username):
        raise _invalid(field, entry, "is not a complete address (name@domain)")
    if len(address.addr_spec) > mailaddr.MAX_ADDRESS_LENGTH:
        raise _invalid(field, entry, f"is longer than {mailaddr.MAX_ADDRESS_LENGTH} characters")
    if (
        like_an_address(address.display_name)
        or len(address.display_name) > mailaddr.MAX_DISPLAY_NAME
    ):
        raise _invalid(field, entry, "has a display name that looks like an address or is too long")
    return address


def recipients_of(params: MailParams, max_recipients: int) -> Recipients:
    count = len(params.to) + len(params.cc) + len(params.bcc)
    if count > max_recipients:
        raise PermanentJobError(
            f"{count} recipients (to + cc + bcc), over the limit of {max_recipients}",
            kind="too_many_recipients",
        )
    return Recipients(
        to=tuple(mail_address(entry, "to") for entry in params.to),
        cc=tuple(mail_address(entry, "cc") for entry in params.cc),
        bcc=tuple(mail_address(entry, "bcc") for entry in params.bcc),
    )


def allowed_only(recipients: Recipients, limits: MailLimits) -> None:
    """Refuse the job when an address SMTP would be given is outside MAIL_ALLOWED_DOMAINS."""
    refused = limits.allowed.first_refused(recipients.envelope())
    if refused is not None:
        domain = refused.rpartition("@")[2]
        raise PermanentJobError(
            f"mail to {refused} is not allowed: its domain {domain} is "
            f"{limits.allowed.describe()}; nothing was sent",
            kind="recipient_not_allowed",
        )


def _invalid(field: str, entry: str, why: str) -> PermanentJobError:
    return PermanentJobError(f"{field} entry {entry!r} {why}", kind="invalid_address")
