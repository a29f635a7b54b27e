"""A blob store on a full (or read-only) disk: writes fail cleanly, readiness says why."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from shared import files
from shared.blobs import FolderBlobStore, input_key
from tests.support.full_disk import full_folder, make_room


def test_check_writable_really_writes_and_reports_a_full_disk(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = FolderBlobStore(root)
    assert store.check_writable() is None
    with full_folder(root) as refused:
        store._writable.forget()  # the last probe is not reused: probe now
        reason = store.check_writable()
        assert reason is not None and errno.errorcode[refused] in reason
        with pytest.raises(OSError) as caught:
            store.write_bytes(input_key("j1", "a.png"), b"x" * 100_000)
        assert caught.value.errno == refused
        assert not list(root.rglob(".tmp-*"))  # no temp file left behind
        make_room(root)
        store._writable.forget()
        if refused == errno.ENOSPC:
            assert store.check_writable() is None
    assert list(root.iterdir()) == []  # the probe leaves nothing either


def test_check_writable_probes_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderBlobStore(tmp_path)
    probes = []
    monkeypatch.setattr(files, "probe_write", lambda folder: probes.append(folder))
    for _ in range(5):
        assert store.check_writable() is None
    assert len(probes) == 1
    monkeypatch.setattr(store._writable, "interval", 0.0)
    store.check_writable()
    assert len(probes) == 2


def test_a_failing_fsync_is_reported_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderBlobStore(tmp_path)

    def no_space(fd: int) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(os, "fsync", no_space)
    reason = store.check_writable()
    assert reason is not None and "EDQUOT" in reason
    with pytest.raises(OSError, match="quota"):
        store.write_bytes(input_key("j1", "a.png"), b"x")
    monkeypatch.undo()
    assert list((tmp_path / "inputs/j1").iterdir()) == []
