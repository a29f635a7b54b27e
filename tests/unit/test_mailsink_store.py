"""The sink's Maildir store: one copy per Message-ID, kept across restarts."""

from __future__ import annotations

import mailbox
import os
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


def test_a_read_message_is_flagged_seen_in_cur_and_stays_read_after_a_restart(
    tmp_path: Path,
) -> None:
    store = MailStore(tmp_path / "mail")
    key = store.deliver(raw()).key
    unread = store.get(key)
    assert unread is not None and not unread.read
    assert store.mark_read(key)
    assert [p.name for p in (tmp_path / "mail" / "cur").iterdir()] == [f"{key}:2,S"]
    assert list((tmp_path / "mail" / "new").iterdir()) == []
    again = MailStore(tmp_path / "mail").get(key)
    assert again is not None and again.read
    assert mailbox.Maildir(tmp_path / "mail", create=False).get_message(key).get_flags() == "S"


def test_only_the_maildirs_own_keys_can_be_marked_or_deleted(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    store.deliver(raw())
    for key in ("..", ".", "*", "nope", "../mail"):
        assert not store.mark_read(key)
        assert not store.delete(key)
    assert len(store) == 1 and (tmp_path / "mail" / "new").is_dir()


def test_delete_removes_the_message_and_frees_its_message_id(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    key = store.deliver(raw("<once@test>")).key
    store.mark_read(key)
    assert store.delete(key)
    assert not store.delete(key)
    assert store.get(key) is None and len(store) == 0
    assert not store.deliver(raw("<once@test>")).duplicate  # sent again: held again


def test_delete_all_empties_the_maildir(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    for n in range(3):
        store.deliver(raw(f"<{n}@test>"))
    assert store.delete_all() == 3
    assert len(store) == 0 and len(MailStore(tmp_path / "mail")) == 0


def test_over_the_cap_the_oldest_messages_go(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail", max_messages=2)
    changes: list[tuple[str, str | None]] = []
    store.on_change = lambda what, key: changes.append((what, key))
    keys = []
    for n in range(4):
        keys.append(store.deliver(raw(f"<{n}@test>", f"subject {n}")).key)
        # Arrival order by the files' times, as after a restart; a second apart each.
        path = tmp_path / "mail" / "new" / keys[-1]
        os.utime(path, (1_700_000_000 + n, 1_700_000_000 + n))
    assert sorted(store.keys()) == sorted(keys[2:])
    assert ("deleted", keys[0]) in changes and ("deleted", keys[1]) in changes
    assert [what for what, _ in changes].count("stored") == 4


def test_a_lower_cap_at_start_trims_what_is_held(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    for n in range(5):
        store.deliver(raw(f"<{n}@test>"))
    assert len(MailStore(tmp_path / "mail", max_messages=3)) == 3
