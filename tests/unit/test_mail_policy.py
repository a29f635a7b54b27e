"""MAIL_ALLOWED_DOMAINS: the rule for an entry, the reserved test names by default, IDNA and
case, IP addresses only when listed, and the setting's errors."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigError
from shared.mailpolicy import RESERVED_TEST_DOMAINS, DomainPolicy, parse_entries


def policy(raw: str) -> DomainPolicy:
    return DomainPolicy(Settings.from_env({"MAIL_ALLOWED_DOMAINS": raw}).mail_allowed_domains)


@pytest.mark.parametrize(
    "address",
    [
        "ann@example.com",
        "ann@EXAMPLE.Com",
        "ann@mail.example.com",  # RFC 6761 6.5: names under example.com are reserved too
        "ann@a.b.example.org",
        "ann@example.net",
        "ann@example",
        "ann@corp.example",
        "ann@host.test",
        "ann@test",
        "ann@nowhere.invalid",
        "ann@localhost",
        "ann@box.localhost",
    ],
)
def test_unset_allows_the_reserved_test_names_and_names_under_them(address: str) -> None:
    assert Settings().mail_allowed_domains == RESERVED_TEST_DOMAINS
    assert DomainPolicy(Settings().mail_allowed_domains).allows(address)


@pytest.mark.parametrize(
    "address",
    [
        "eve@gmail.com",
        "eve@example.co.uk",
        "eve@notexample.com",
        "eve@example.com.evil.net",
        "eve@examplexcom",
        "eve@testing",
        "eve@127.0.0.1",
        "eve@[127.0.0.1]",
        "eve@2130706433",  # 127.0.0.1 to inet_aton
        "eve@0x7f.1",
        "eve@",
        "no-at-sign",
    ],
)
def test_unset_refuses_every_other_domain_and_ip_addresses(address: str) -> None:
    assert not DomainPolicy().allows(address)


def test_an_empty_setting_is_the_same_as_unset() -> None:
    assert Settings.from_env({"MAIL_ALLOWED_DOMAINS": " , "}).mail_allowed_domains == (
        RESERVED_TEST_DOMAINS
    )


def test_a_plain_entry_allows_exactly_that_domain() -> None:
    allowed = policy("corp.com")
    assert allowed.allows("a@corp.com") and allowed.allows("a@CORP.COM")
    assert not allowed.allows("a@mail.corp.com")
    assert not allowed.allows("a@example.com")  # setting it replaces the reserved names


def test_a_wildcard_entry_allows_every_name_under_it_but_not_itself() -> None:
    allowed = policy("*.corp.com")
    assert allowed.allows("a@mail.corp.com") and allowed.allows("a@x.y.corp.com")
    assert not allowed.allows("a@corp.com")
    assert not allowed.allows("a@evilcorp.com")
    both = policy("corp.com, *.corp.com")
    assert both.allows("a@corp.com") and both.allows("a@eu.corp.com")


def test_domains_compare_in_their_idna_form() -> None:
    allowed = policy("Bücher.example")
    assert allowed.entries == ("xn--bcher-kva.example",)
    assert allowed.allows("a@xn--bcher-kva.example")
    assert allowed.allows("a@BÜCHER.example")
    assert not allowed.allows("a@bucher.example")


def test_ip_addresses_only_when_listed_and_never_by_a_wildcard() -> None:
    everything = policy("*")
    assert everything.allows("a@gmail.com")
    assert not everything.allows("a@[192.0.2.1]") and not everything.allows("a@192.0.2.1")
    assert not everything.allows("a@2130706433")
    listed = policy("192.0.2.1, [IPv6:2001:DB8::1]")
    assert listed.entries == ("192.0.2.1", "2001:db8::1")
    assert listed.allows("a@[192.0.2.1]") and listed.allows("a@192.0.2.1")
    assert listed.allows("a@[IPv6:2001:db8:0::1]")
    assert not listed.allows("a@[192.0.2.2]")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (".corp.com", "write *.corp.com for the names under corp.com"),
        ("a.*.corp.com", "'a.*.corp.com' is not a domain name"),
        ("*corp.com", "'*corp.com' is not a domain name"),
        ("corp..com", "is not a domain name"),
        ("corp_x.com", "is not a domain name"),
        ("user@corp.com", "is not a domain name"),
    ],
)
def test_a_bad_entry_is_one_clear_configuration_error(raw: str, says: str) -> None:
    with pytest.raises(ConfigError, match=r"^MAIL_ALLOWED_DOMAINS must list domains") as error:
        Settings.from_env({"MAIL_ALLOWED_DOMAINS": f"example.com,{raw}"})
    assert says in str(error.value)


def test_entries_are_kept_once_in_their_order() -> None:
    assert parse_entries("b.com, A.com,b.com") == ("b.com", "a.com")


@pytest.mark.parametrize("raw", ["ops-secret", "ops-secret:", ":ops-secret"])
def test_mailsink_ui_auth_must_be_user_and_password_and_is_not_echoed(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^MAILSINK_UI_AUTH must be user:password") as error:
        Settings.from_env({"MAILSINK_UI_AUTH": raw})
    assert "ops-secret" not in str(error.value)


def test_the_sink_and_auth_switches_are_off_by_default() -> None:
    settings = Settings.from_env({})
    assert not settings.mailsink_chaos_api and not settings.auth_disabled
    assert settings.mailsink_ui_auth == ""
    assert "mailsink_ui_auth" not in repr(Settings(mailsink_ui_auth="ops:secret"))
