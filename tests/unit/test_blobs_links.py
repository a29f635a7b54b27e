"""The folder store never follows a symbolic link: not to read, write, list or delete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.blobs import FolderBlobStore, input_key, output_key
from shared.errors import BlobError, BlobLinkError


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the store standing for /etc/shadow."""
    path = tmp_path / "outside" / "shadow"
    path.parent.mkdir()
    path.write_bytes(b"root:secret\n")
    return path


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def test_a_linked_file_is_never_read(store: FolderBlobStore, tmp_path: Path, secret: Path) -> None:
    (tmp_path / "blobs/inputs/j1").mkdir(parents=True)
    (tmp_path / "blobs/inputs/j1/input.png").symlink_to(secret)
    key = input_key("j1", "input.png")
    with pytest.raises(BlobLinkError, match="is a symbolic link"):
        store.read_bytes(key)
    with pytest.raises(BlobLinkError, match="is a symbolic link"):
        store.size(key)
    with pytest.raises(BlobLinkError, match="is a symbolic link"), store.open_read(key):
        pass
    with pytest.raises(BlobLinkError):
        store.exists(key)
    assert issubclass(BlobLinkError, BlobError)


@pytest.mark.parametrize("linked", ["inputs", "inputs/j1"])
def test_a_linked_folder_on_the_way_is_never_entered(
    store: FolderBlobStore, tmp_path: Path, secret: Path, linked: str
) -> None:
    link = tmp_path / "blobs" / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    (secret.parent / "j1").mkdir()
    (secret.parent / "j1" / "input.png").symlink_to(secret)  # in case "inputs" is followed
    link.symlink_to(secret.parent if linked == "inputs" else secret.parent / "j1")
    with pytest.raises(BlobLinkError, match=f"'{linked}' in the blob store is a symbolic link"):
        store.read_bytes(input_key("j1", "input.png"))
    with pytest.raises(BlobLinkError):
        store.write_bytes(input_key("j1", "new.png"), b"x")
    with pytest.raises(BlobLinkError):
        store.stage_bytes(input_key("j1", "new.png"), b"x")
    with pytest.raises(BlobLinkError):
        store.list("inputs/j1")
    assert sorted(p.name for p in secret.parent.rglob("*")) == ["input.png", "j1", "shadow"]


def test_a_linked_output_folder_takes_no_write(
    store: FolderBlobStore, tmp_path: Path, secret: Path
) -> None:
    (tmp_path / "blobs/outputs").mkdir(parents=True)
    (tmp_path / "blobs/outputs/j1").symlink_to(secret.parent)
    with pytest.raises(BlobLinkError, match="'outputs/j1' in the blob store is a symbolic link"):
        store.write_bytes(output_key("j1", "100x100.png"), b"pixels")
    with pytest.raises(BlobLinkError):
        store.write_manifest("j1", [])
    with pytest.raises(BlobLinkError):
        store.read_manifest("j1")
    assert [p.name for p in secret.parent.iterdir()] == ["shadow"]


def test_a_write_replaces_a_link_at_its_name_and_never_writes_through_it(
    store: FolderBlobStore, tmp_path: Path, secret: Path
) -> None:
    # A redelivered job writes its outputs again: the rename replaces whatever is there.
    store.write_bytes(output_key("j1", "a.png"), b"first")
    planted = tmp_path / "blobs/outputs/j1/b.png"
    planted.symlink_to(secret)
    store.write_bytes(output_key("j1", "a.png"), b"second")
    store.write_bytes(output_key("j1", "b.png"), b"mine")
    planted_input = tmp_path / "blobs/inputs/j2/input.png"
    planted_input.parent.mkdir(parents=True)
    planted_input.symlink_to(secret)
    store.stage_bytes(input_key("j2", "input.png"), b"upload").commit()
    assert not planted_input.is_symlink() and planted_input.read_bytes() == b"upload"
    assert store.read_bytes(output_key("j1", "a.png")) == b"second"
    assert not planted.is_symlink() and planted.read_bytes() == b"mine"
    assert secret.read_bytes() == b"root:secret\n"


def test_a_planted_manifest_link_is_not_served_as_unfinished(
    store: FolderBlobStore, tmp_path: Path, secret: Path
) -> None:
    (tmp_path / "blobs/outputs/j1").mkdir(parents=True)
    (tmp_path / "blobs/outputs/j1/manifest.json").symlink_to(secret)
    with pytest.raises(BlobLinkError, match="is a symbolic link"):
        store.read_manifest("j1")


def test_list_skips_links_and_delete_removes_only_the_links(
    store: FolderBlobStore, tmp_path: Path, secret: Path
) -> None:
    kept = store.write_bytes(output_key("j1", "a.png"), b"a")
    (tmp_path / "blobs/outputs/j1/passwd").symlink_to(secret)
    (tmp_path / "blobs/outputs/j1/etc").symlink_to(secret.parent)
    assert store.list("outputs/j1") == [kept]
    assert store.list("outputs") == [kept]
    store.delete_prefix("outputs/j1")
    assert not (tmp_path / "blobs/outputs/j1").exists()
    assert secret.read_bytes() == b"root:secret\n"


def test_delete_prefix_of_a_link_removes_the_link_not_its_target(
    store: FolderBlobStore, tmp_path: Path, secret: Path
) -> None:
    (tmp_path / "blobs/inputs").mkdir(parents=True)
    (tmp_path / "blobs/inputs/j1").symlink_to(secret.parent)
    store.delete_prefix("inputs/j1")
    assert not (tmp_path / "blobs/inputs/j1").is_symlink()
    assert secret.read_bytes() == b"root:secret\n"


def test_a_fifo_under_a_key_is_no_blob_and_does_not_hang(
    store: FolderBlobStore, tmp_path: Path
) -> None:
    (tmp_path / "blobs/inputs/j1").mkdir(parents=True)
    os.mkfifo(tmp_path / "blobs/inputs/j1/input.png")
    with pytest.raises(BlobError, match="does not exist"):
        store.read_bytes(input_key("j1", "input.png"))


def test_the_root_itself_may_be_a_link_chosen_by_the_operator(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "blobs").symlink_to(tmp_path / "real")
    store = FolderBlobStore(tmp_path / "blobs")
    key = store.write_bytes(input_key("j1", "a.png"), b"a")
    assert store.read_bytes(key) == b"a"
    assert (tmp_path / "real" / key).read_bytes() == b"a"


def test_a_hard_link_to_a_file_elsewhere_is_not_read(
    store: FolderBlobStore, tmp_path: Path, secret: Path
) -> None:
    (tmp_path / "blobs/inputs/j1").mkdir(parents=True)
    os.link(secret, tmp_path / "blobs/inputs/j1/input.png")
    key = input_key("j1", "input.png")
    with pytest.raises(BlobLinkError, match="is a hard link"):
        store.read_bytes(key)
    with pytest.raises(BlobLinkError, match="is a hard link"):
        store.size(key)
