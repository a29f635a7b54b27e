"""The sink's Maildir store: one copy per Message-ID, kept across restarts."""

from __future__ import annotations

import mailbox
from pathlib import Path

from services.mailsink.store import MailStore, message_id_of


def raw(message_id: str | None = "<1@test>", subject: str = "hi") -> bytes:
    header = f"Message-ID: {message_id}\r\n" if message_id else ""
    return f"From: a@x.com\r\nTo: b@y.com\r\nSubject: {subject}\r\n{header}\r\nbody\r\n".encode()


def test_a_delivered_message_is_a_maildir_message(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    delivery = store.deliver(raw())
    assert not delivery.duplicate
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    assert list(box.keys()) == [delivery.key]
    stored = store.get(delivery.key)
    assert stored is not None and stored.message["Subject"] == "hi"
    assert store.raw(delivery.key) is not None


def test_a_second_message_with_the_same_message_id_is_not_stored(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    first = store.deliver(raw("<same@test>", "first"))
    second = store.deliver(raw("<same@test>", "second"))
    assert second.duplicate and second.key == first.key
    assert len(store) == 1
    stored = store.get(first.key)
    assert stored is not None and stored.message["Subject"] == "first"


def test_messages_without_a_message_id_are_all_stored(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    assert not store.deliver(raw(None)).duplicate
    assert not store.deliver(raw(None)).duplicate
    assert len(store) == 2


def test_the_message_id_index_survives_a_restart(tmp_path: Path) -> None:
    MailStore(tmp_path / "mail").deliver(raw("<kept@test>"))
    again = MailStore(tmp_path / "mail")
    assert again.deliver(raw("<kept@test>")).duplicate
    assert not again.deliver(raw("<new@test>")).duplicate
    assert len(again) == 2


def test_an_existing_empty_folder_becomes_a_maildir(tmp_path: Path) -> None:
    (tmp_path / "volume").mkdir()
    store = MailStore(tmp_path / "volume")
    store.deliver(raw())
    assert len(store) == 1


def test_unknown_keys_are_none_not_errors(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    assert store.get("no-such-key") is None
    assert store.raw("../../etc/passwd") is None


def test_newest_first_lists_every_message(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    keys = [store.deliver(raw(f"<{i}@test>")).key for i in range(3)]
    assert sorted(s.key for s in store.newest_first()) == sorted(keys)


def test_message_id_of_reads_the_header_only() -> None:
    assert message_id_of(raw("  <spaced@test>  ")) == "<spaced@test>"
    assert message_id_of(raw(None)) is None
    assert message_id_of(b"\xff\xfe not a message") is None
