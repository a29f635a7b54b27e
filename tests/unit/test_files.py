"""Durable file writes: whole or not at all, and the folders made for them durable too."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import files


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders fsynced, in order (each still fsynced for real)."""
    seen: list[Path] = []
    real = files.fsync_dir

    def noting(directory: Path) -> None:
        seen.append(directory)
        real(directory)

    monkeypatch.setattr(files, "fsync_dir", noting)
    return seen


def test_a_durable_write_into_new_folders_fsyncs_each_new_folder_s_parent(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    final = tmp_path / "a" / "b" / "anchor.json"
    with files.atomic_write(final) as f:
        f.write(b"{}")
    assert final.read_bytes() == b"{}"
    assert fsynced == [tmp_path, tmp_path / "a"]


def test_folders_that_exist_are_not_fsynced_again(tmp_path: Path, fsynced: list[Path]) -> None:
    (tmp_path / "a").mkdir()
    files.make_folders(tmp_path / "a" / "b")
    assert fsynced == [tmp_path / "a"]
    fsynced.clear()
    files.make_folders(tmp_path / "a" / "b")
    assert fsynced == []


def test_a_write_that_need_not_be_durable_fsyncs_no_folder(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    final = tmp_path / "cache" / "x.bin"
    with files.atomic_write(final, durable=False) as f:
        f.write(b"x")
    assert final.read_bytes() == b"x"
    assert fsynced == []


def test_a_block_that_fails_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "new" / "x.json"
    with pytest.raises(ValueError), files.atomic_write(final) as f:
        f.write(b"half")
        raise ValueError("the writer broke")
    assert list(final.parent.iterdir()) == []
