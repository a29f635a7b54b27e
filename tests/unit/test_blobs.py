"""The BlobStore contract, run against every implementation (`any_blob_store`: the folder and
an S3 bucket); what only a folder can show (temp files, its own folders) is folder-only."""

from __future__ import annotations

import inspect
import os
from pathlib import Path, PurePath

import pytest

from shared.blobs import (
    BlobStore,
    FolderBlobStore,
    input_key,
    manifest_key,
    open_blob_store,
    output_key,
    validate_key,
)
from shared.blobs.keys import Manifest
from shared.blobs.nofollow import read_all
from shared.blobs.s3 import S3BlobStore
from shared.config import Settings
from shared.errors import BlobError


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "inputs/../../x", "a//b", ".hidden/x"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(BlobError):
        validate_key(key)


def test_a_failed_write_leaves_nothing_under_the_key(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    key = output_key("j1", "a.bin")
    with pytest.raises(RuntimeError), store.open_write(key) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert not store.exists(key)
    assert store.list("outputs/j1") == []

    store.write_bytes(key, b"whole")
    assert store.read_bytes(key) == b"whole"
    assert store.list("outputs/j1") == [key]


def test_a_failed_write_leaves_the_earlier_blob_whole(any_blob_store: BlobStore) -> None:
    key = any_blob_store.write_bytes(output_key("j1", "a.bin"), b"first")
    with pytest.raises(RuntimeError), any_blob_store.open_write(key) as f:
        f.write(b"second, half")
        raise RuntimeError("writer died")
    assert any_blob_store.read_bytes(key) == b"first"


def test_the_folder_write_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    with pytest.raises(RuntimeError), store.open_write(output_key("j1", "a.bin")) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert list((tmp_path / "outputs" / "j1").iterdir()) == []


def test_a_staged_blob_is_stored_only_once_committed(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    key = input_key("j1", "input.png")
    staged = store.stage_bytes(key, b"pixels")
    assert not store.exists(key) and store.list("inputs/j1") == []
    staged.commit()
    assert store.read_bytes(key) == b"pixels" and store.list("inputs/j1") == [key]


def test_a_discarded_blob_leaves_the_earlier_one_whole(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    key = store.write_bytes(output_key("j1", "a.bin"), b"first")
    store.stage_bytes(key, b"second").discard()
    assert store.read_bytes(key) == b"first" and store.list("outputs/j1") == [key]
    store.stage_bytes(key, b"second").commit()
    assert store.read_bytes(key) == b"second"
    store.stage_bytes(output_key("j2", "a.bin"), b"never").discard()
    assert store.list("outputs/j2") == []


def test_stage_bytes_checks_its_key(any_blob_store: BlobStore) -> None:
    with pytest.raises(BlobError, match="invalid blob key"):
        any_blob_store.stage_bytes("../escape", b"x")


def test_a_staged_file_keeps_no_descriptor_or_temp_file_once_ended(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    open_fds = len(os.listdir("/proc/self/fd"))
    committed = store.stage_bytes(input_key("j1", "input.png"), b"kept")
    discarded = store.stage_bytes(input_key("j2", "input.png"), b"dropped")
    assert len(os.listdir(tmp_path / "inputs" / "j2")) == 1  # the temp file, in the page cache
    committed.commit()
    discarded.discard()
    discarded.discard()  # twice: nothing more to do
    assert len(os.listdir("/proc/self/fd")) == open_fds
    assert [p.name for p in (tmp_path / "inputs").glob("*/*")] == ["input.png"]


def test_a_write_of_bytes_whose_rename_fails_leaves_no_temp_file(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    (tmp_path / "outputs" / "j1" / "a.bin").mkdir(parents=True)  # the name taken by a folder
    with pytest.raises(IsADirectoryError):
        store.write_bytes(output_key("j1", "a.bin"), b"whole")
    assert [p.name for p in (tmp_path / "outputs" / "j1").iterdir()] == ["a.bin"]


@pytest.mark.parametrize("size", [0, 1, 70_000, 3 * 1024 * 1024 + 7])
def test_read_bytes_gives_the_whole_blob_whatever_its_size(tmp_path: Path, size: int) -> None:
    store = FolderBlobStore(tmp_path)
    data = os.urandom(size)
    key = store.write_bytes(output_key("j1", "a.bin"), data)
    assert store.read_bytes(key) == data


def test_a_file_that_grew_after_it_was_measured_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        with open(tmp_path / "f", "ab") as grow:  # appended between the fstat and the read
            grow.write(b"y" * 100_000)
        assert read_all(fd, 10) == b"x" * 10 + b"y" * 100_000
    finally:
        os.close(fd)


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths fsynced from now on, in order (their names as open descriptors)."""
    paths: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return paths


def test_a_durable_write_makes_the_folders_it_made_durable(
    tmp_path: Path, fsynced: list[str]
) -> None:
    store = FolderBlobStore(tmp_path)
    store.write_bytes(input_key("j1", "input.png"), b"pixels")
    root, inputs, folder = str(tmp_path), str(tmp_path / "inputs"), str(tmp_path / "inputs/j1")
    # The file (its temp name), its folder after the rename, then each new folder's parent.
    assert fsynced[0].startswith(f"{folder}/.tmp-")
    assert fsynced[1:] == [folder, root, inputs]
    fsynced.clear()
    store.write_bytes(input_key("j1", "other.png"), b"pixels")  # no new folder
    assert fsynced[1:] == [folder]
    fsynced.clear()
    store.write_manifest("j2", [])  # not durable: no fsync at all, its new folder neither
    assert fsynced == []


def test_a_staged_write_waits_on_the_disk_only_in_commit(
    tmp_path: Path, fsynced: list[str]
) -> None:
    store = FolderBlobStore(tmp_path)
    staged = store.stage_bytes(input_key("j1", "input.png"), b"pixels")
    assert fsynced == []
    staged.commit()
    folder = str(tmp_path / "inputs/j1")
    assert fsynced[1:] == [folder, str(tmp_path), str(tmp_path / "inputs")]


def test_manifest_marks_a_job_complete(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    assert store.read_manifest("j1") is None
    store.write_manifest("j1", ["outputs/j1/a.png"])
    assert store.read_manifest("j1") == Manifest(["outputs/j1/a.png"])


def test_the_manifest_carries_the_jobs_owner(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    store.write_manifest("j1", ["outputs/j1/a.png"], client="alice")
    assert store.read_manifest("j1") == Manifest(["outputs/j1/a.png"], "alice")
    store.write_bytes(manifest_key("j1"), b'{"outputs": [], "client": 7}')
    assert store.read_manifest("j1") is None  # not a manifest: unfinished, never "no owner"


def test_missing_blob_is_a_blob_error(any_blob_store: BlobStore) -> None:
    with pytest.raises(BlobError, match="does not exist"):
        any_blob_store.read_bytes(input_key("j", "x.jpg"))


def test_a_torn_manifest_reads_as_unfinished_so_the_job_runs_again(
    any_blob_store: BlobStore,
) -> None:
    # Folder manifests skip fsync: after a power cut one may be empty or cut short.
    store = any_blob_store
    store.write_manifest("j1", ["outputs/j1/a.png"])
    store.write_bytes(manifest_key("j1"), b'{"outpu')
    assert store.read_manifest("j1") is None
    store.write_bytes(manifest_key("j1"), b"")
    assert store.read_manifest("j1") is None


def test_open_read_streams_a_blob_and_closes_it(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    data = bytes(range(256)) * 1000
    key = store.write_bytes(output_key("j1", "a.bin"), data)
    with store.open_read(key) as f:
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]
    assert f.closed
    with pytest.raises(BlobError, match="does not exist"), store.open_read(output_key("j1", "b")):
        pass


def test_open_read_seeks_as_the_download_ranges_do(any_blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 4000  # ~1 MiB: past any read buffer
    key = any_blob_store.write_bytes(output_key("j1", "a.bin"), data)
    with any_blob_store.open_read(key) as f:
        assert f.seekable()
        f.seek(700_000)
        assert f.read(5) == data[700_000:700_005]
        f.seek(3)
        assert f.read(4) == data[3:7]
        f.seek(-2, 2)
        assert f.read() == data[-2:]
        assert f.read(1) == b""


def test_size_is_the_blobs_length_and_a_folder_is_no_blob(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    key = store.write_bytes(output_key("j1", "a.bin"), b"12345")
    assert store.size(key) == 5
    assert store.exists(key)
    for not_a_blob in (output_key("j1", "b.bin"), "outputs/j1", "outputs/j1/a.bin/c"):
        assert not store.exists(not_a_blob)
        with pytest.raises(BlobError, match="does not exist"):
            store.size(not_a_blob)
        with pytest.raises(BlobError, match="does not exist"):
            store.read_bytes(not_a_blob)


def test_delete_prefix_removes_the_blobs_under_it(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    store.write_bytes("outputs/j1/a.png", b"a")
    store.write_bytes("outputs/j1/small/b.png", b"b")
    store.write_bytes("outputs/j10/d.png", b"d")  # a longer name is not under the prefix
    kept = store.write_bytes("outputs/j2/c.png", b"c")
    store.delete_prefix("outputs/j1")
    assert store.list("outputs/j1") == []
    assert store.list("outputs") == ["outputs/j10/d.png", kept]
    store.delete_prefix("outputs/j9")  # nothing there: nothing to do


def test_delete_prefix_removes_the_folders_it_emptied(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    store.write_bytes("outputs/j1/small/b.png", b"b")
    store.delete_prefix("outputs/j1")
    assert not (tmp_path / "outputs" / "j1").exists()


def test_delete_prefix_leaves_a_write_in_progress_to_finish(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    store.write_bytes("inputs/j1/a.png", b"a")
    with store.open_write("inputs/j1/b.png") as f:
        store.delete_prefix("inputs/j1")
        f.write(b"b")
    assert store.list("inputs/j1") == ["inputs/j1/b.png"]


def test_check_writable_takes_a_write_and_leaves_nothing(any_blob_store: BlobStore) -> None:
    assert any_blob_store.check_writable() is None
    assert any_blob_store.list("inputs") == []
    assert any_blob_store.list("outputs") == []


def test_check_writable_says_why_a_folder_takes_no_writes(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    assert store.check_writable() is None
    (tmp_path / "blobs").rmdir()
    reason = store.check_writable()
    assert reason is not None and "not writable" in reason


@pytest.mark.parametrize("implementation", [FolderBlobStore, S3BlobStore])
def test_every_store_is_the_interface_and_hands_out_no_local_path(
    implementation: type, any_blob_store: BlobStore
) -> None:
    public = {name for name in dir(implementation) if not name.startswith("_")}
    # check_bucket: the S3 store's start-up check, called by open_blob_store only
    assert public - {"check_bucket"} == {name for name in dir(BlobStore) if name[0] != "_"}
    for name in public:
        assert "Path" not in str(inspect.signature(getattr(implementation, name))), name
    store = any_blob_store
    key = store.write_bytes(output_key("j1", "a.png"), b"a")
    store.write_manifest("j1", [key])
    with store.open_read(key) as f:
        handed_out = [f, store.read_bytes(key), store.size(key), store.list("outputs")]
    handed_out += [store.read_manifest("j1"), store.check_writable(), store.exists(key)]
    assert not any(isinstance(value, PurePath) for value in handed_out)
    assert not any(isinstance(k, PurePath) for k in store.list("outputs"))


@pytest.mark.parametrize("method", ["exists", "size", "read_bytes", "list", "delete_prefix"])
def test_every_method_checks_its_key(any_blob_store: BlobStore, method: str) -> None:
    with pytest.raises(BlobError, match="invalid blob key"):
        getattr(any_blob_store, method)("../escape")


def test_open_read_and_open_write_check_their_key(any_blob_store: BlobStore) -> None:
    store = any_blob_store
    with pytest.raises(BlobError, match="invalid blob key"), store.open_write("../escape"):
        pass
    with pytest.raises(BlobError, match="invalid blob key"), store.open_read("/etc/passwd"):
        pass
    with pytest.raises(BlobError, match="invalid blob key"):
        store.write_manifest("../j1", [])
    assert store.list("outputs") == [] and store.list("inputs") == []


def test_open_read_and_open_write_check_their_key_in_a_folder(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    with pytest.raises(BlobError), store.open_write("../escape"):
        pass
    assert list(tmp_path.iterdir()) == [tmp_path / "blobs"]


def test_the_store_of_the_settings_is_the_blob_folder(tmp_path: Path) -> None:
    store = open_blob_store(Settings(blob_dir=tmp_path / "blobs"))
    key = store.write_bytes(input_key("j1", "a.png"), b"a")
    assert (tmp_path / "blobs" / key).read_bytes() == b"a"


def test_a_file_url_names_another_folder(tmp_path: Path) -> None:
    settings = Settings(blob_dir=tmp_path / "unused", blob_store=(tmp_path / "other").as_uri())
    key = open_blob_store(settings).write_bytes(input_key("j1", "a.png"), b"a")
    assert (tmp_path / "other" / key).read_bytes() == b"a"
    assert not (tmp_path / "unused").exists()


def test_a_writer_tells_and_seeks_back_to_patch_a_header(any_blob_store: BlobStore) -> None:
    key = output_key("j1", "a.bin")
    with any_blob_store.open_write(key) as f:
        f.write(b"HDR?")
        f.write(b"body")
        assert f.tell() == 8
        f.seek(3)
        f.write(b"!")
        f.seek(0, 2)
        f.write(b".")
        f.seek(12)
        f.write(b"z")
    assert any_blob_store.read_bytes(key) == b"HDR!body.\0\0\0z"
