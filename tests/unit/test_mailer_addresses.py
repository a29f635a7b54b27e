"""Recipient checks: one address per entry, no header injection, a recipient limit."""

from __future__ import annotations

import pytest

from services.mailer.addresses import Recipients, header_value, mail_address, recipients_of
from shared.errors import PermanentJobError
from shared.jobtypes.mail import MailParams


def params(**fields: object) -> MailParams:
    return MailParams.model_validate(
        {"to": ["a@example.com"], "subject": "s", "text": "t", **fields}
    )


@pytest.mark.parametrize(
    ("entry", "display_name", "addr_spec"),
    [
        ("a@example.com", "", "a@example.com"),
        ("Alice Example <alice@example.com>", "Alice Example", "alice@example.com"),
        ('"Smith, John" <john@example.com>', "Smith, John", "john@example.com"),
        ("  padded@example.com ", "", "padded@example.com"),
        ("first.last+tag@mail.example.co.uk", "", "first.last+tag@mail.example.co.uk"),
    ],
)
def test_one_address_per_entry_is_accepted(entry: str, display_name: str, addr_spec: str) -> None:
    address = mail_address(entry, "to")
    assert (address.display_name, address.addr_spec) == (display_name, addr_spec)


@pytest.mark.parametrize(
    "entry",
    [
        "a@x.com, b@y.com",  # a second recipient smuggled into one entry
        "a@x.com; b@y.com",
        "a@x.com b@y.com",
        "<a@x.com> <b@y.com>",
        "group: a@x.com, b@y.com;",
        "Alice <a@x.com>, b@y.com",
        "",
        "   ",
        "not an address",
        "a@",
        "@x.com",
        "Alice <a@x.com",
    ],
)
def test_anything_but_exactly_one_address_is_refused(entry: str) -> None:
    with pytest.raises(PermanentJobError) as refused:
        mail_address(entry, "to")
    assert refused.value.kind == "invalid_address"


@pytest.mark.parametrize(
    "entry",
    [
        '"ceo@bank.example" <attacker@evil.example>',  # shows as another address
        '"a@x.com, b@y.com" <c@z.com>',
        '"<boss@corp.example>" <attacker@evil.example>',
        "a@x.com <b@y.com>",
    ],
)
def test_display_name_tricks_are_refused(entry: str) -> None:
    with pytest.raises(PermanentJobError) as refused:
        mail_address(entry, "cc")
    assert refused.value.kind == "invalid_address"


@pytest.mark.parametrize(
    "entry",
    [
        "a@x.com\r\nBcc: victim@y.com",
        "a@x.com\nBcc: victim@y.com",
        "a@x.com\r",
        "Alice\r\n <a@x.com>",
        "a@x.com\x00",
        "a@x.com\u2028Bcc: victim@y.com",
        "a@x.com\x85",
    ],
)
@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
def test_line_breaks_in_any_recipient_field_are_header_injection(field: str, entry: str) -> None:
    with pytest.raises(PermanentJobError) as refused:
        recipients_of(params(**{field: [entry]}), max_recipients=50)
    assert refused.value.kind == "header_injection"
    assert field in str(refused.value)


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: victim@y.com", "Hi\nX-Evil: 1", "Hi\rthere"])
def test_line_breaks_in_the_subject_are_header_injection(subject: str) -> None:
    with pytest.raises(PermanentJobError) as refused:
        header_value(subject, "subject")
    assert refused.value.kind == "header_injection"


def test_a_tab_and_non_ascii_text_are_fine_in_a_header_value() -> None:
    assert header_value("Rechnung\tNr. 7 für Müller", "subject")


def test_more_recipients_than_the_limit_over_to_cc_and_bcc_are_refused() -> None:
    many = params(to=["a@x.com", "b@x.com"], cc=["c@x.com"], bcc=["d@x.com"])
    assert len(recipients_of(many, max_recipients=4).envelope()) == 4
    with pytest.raises(PermanentJobError) as refused:
        recipients_of(many, max_recipients=3)
    assert refused.value.kind == "too_many_recipients"
    assert "4 recipients" in str(refused.value)


def test_the_envelope_holds_bcc_and_each_address_once() -> None:
    recipients = recipients_of(
        params(to=["A@x.com", "b@x.com"], cc=["a@x.com"], bcc=["Hidden <h@x.com>"]),
        max_recipients=10,
    )
    assert isinstance(recipients, Recipients)
    assert recipients.envelope() == ["A@x.com", "b@x.com", "h@x.com"]
    assert [a.addr_spec for a in recipients.bcc] == ["h@x.com"]
