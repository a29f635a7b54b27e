"""The benchmarks' scratch folders: where a run's files go, kept until the run ends (deleting
between measurements would slow the next ones' file creation), and the file system named."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from benchmarks.scratch import (
    DEFAULT,
    RUN_FOLDER_ENV,
    described_filesystem,
    filesystem_of,
    run_folder,
    scratch_folder,
)


@pytest.fixture(autouse=True)
def _temp_folder_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    monkeypatch.delenv(RUN_FOLDER_ENV, raising=False)


def test_a_run_folder_is_the_temp_folder_of_the_run_and_its_children_then_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "scratch"
    monkeypatch.setenv("BENCH_TMPDIR", str(base))
    monkeypatch.setenv("TMPDIR", "/somewhere/else")
    with run_folder() as run:
        assert run.parent == base.resolve() and run.is_dir()
        assert os.environ["TMPDIR"] == str(run)  # what the processes it starts inherit
        assert tempfile.gettempdir() == str(run)
        with scratch_folder() as one:
            (one / "blob").write_bytes(b"x")
        assert (one / "blob").is_file(), "a measurement's folder stays until the run ends"
    assert not run.exists() and not one.exists()
    assert os.environ["TMPDIR"] == "/somewhere/else"
    assert RUN_FOLDER_ENV not in os.environ


def test_without_bench_tmpdir_the_run_folder_is_under_var_in_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BENCH_TMPDIR", raising=False)
    with run_folder() as run:
        assert run.parent == DEFAULT.resolve()
    assert DEFAULT.parent.name == "var" and (DEFAULT.parents[1] / "Procfile").is_file()


def test_outside_a_run_a_scratch_folder_goes_at_the_end_of_its_block() -> None:
    with scratch_folder() as one:
        (one / "blob").write_bytes(b"x")
    assert not one.exists()


def test_the_file_system_named_is_the_longest_mount_above_the_path(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "tmpfs /data/fast tmpfs rw 0 0\n"
        "tmpfs /data/with\\040space tmpfs rw 0 0\n"
    )
    assert filesystem_of(Path("/data/fast/x"), mounts) == "tmpfs"
    assert filesystem_of(Path("/data/fast"), mounts) == "tmpfs"
    assert filesystem_of(Path("/data/fastest"), mounts) == "ext4"  # a prefix, not a parent
    assert filesystem_of(Path("/data/with space/y"), mounts) == "tmpfs"
    assert filesystem_of(Path("/"), mounts) == "ext4"
    assert filesystem_of(Path("/x"), tmp_path / "missing") == "unknown"
    assert filesystem_of(Path("/proc/self")) == "proc"  # this machine's own table


def test_an_ext4_is_named_with_or_without_its_journal(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n/dev/loop0 /mnt/j ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n"
    )
    jbd2 = tmp_path / "jbd2"
    (jbd2 / "loop0-8").mkdir(parents=True)  # jbd2's entry for the journal of /dev/loop0
    assert described_filesystem(Path("/mnt/j/x"), mounts, jbd2) == "ext4 with a journal"
    assert described_filesystem(Path("/srv"), mounts, jbd2) == "ext4 without a journal"
    assert described_filesystem(Path("/dev/shm/x"), mounts, jbd2) == "tmpfs"
    # No jbd2 at all: no ext4 has a journal.
    assert described_filesystem(Path("/srv"), mounts, tmp_path / "none") == "ext4 without a journal"
    assert described_filesystem(Path("/x"), tmp_path / "missing", jbd2) == "unknown"
