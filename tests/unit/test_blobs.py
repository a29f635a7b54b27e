from __future__ import annotations

from pathlib import Path

import pytest

from shared.blobs import FolderBlobStore, input_key, output_key, validate_key
from shared.errors import BlobError


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "inputs/../../x", "a//b", ".hidden/x"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(BlobError):
        validate_key(key)


def test_write_is_atomic_and_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    key = output_key("j1", "a.bin")
    with pytest.raises(RuntimeError), store.open_for_write(key) as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert not store.exists(key)
    assert list((tmp_path / "outputs" / "j1").iterdir()) == []

    store.write_bytes(key, b"whole")
    assert store.read_bytes(key) == b"whole"
    assert store.list("outputs/j1") == [key]


def test_manifest_marks_a_job_complete(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    assert store.read_manifest("j1") is None
    store.write_manifest("j1", ["outputs/j1/a.png"])
    assert store.read_manifest("j1") == ["outputs/j1/a.png"]


def test_missing_blob_is_a_blob_error(tmp_path: Path) -> None:
    with pytest.raises(BlobError, match="does not exist"):
        FolderBlobStore(tmp_path).read_bytes(input_key("j", "x.jpg"))


def test_a_torn_manifest_reads_as_unfinished_so_the_job_runs_again(tmp_path: Path) -> None:
    # Manifests skip fsync: after a power cut one may be empty or cut short.
    store = FolderBlobStore(tmp_path)
    store.write_manifest("j1", ["outputs/j1/a.png"])
    store.path("outputs/j1/manifest.json").write_bytes(b'{"outpu')
    assert store.read_manifest("j1") is None
    store.path("outputs/j1/manifest.json").write_bytes(b"")
    assert store.read_manifest("j1") is None
