"""Where a benchmark run keeps its files (blob stores, state, logs, the baseline's worktree),
and when they are deleted: at the end of the run, never between measurements.

Deleting many files makes the next ones slow to create on some file systems. On the machine
of docs/performance.md (ext4 without a journal), the kernel skips every inode deleted in the
last minute (five, while its inode table block is dirty) when it picks one for a new file,
walking them one by one (`recently_deleted` in `find_inode_bit`): after a run's folder of a
thousand jobs was deleted, a new file or folder cost up to 0.9 ms of system CPU instead of
0.03 ms, so the next run's services paid for the last run's clean-up. Jobsuite itself deletes
nothing per job (temporary files are renamed into place). The header names the file system
and, for ext4, whether it has a journal (`described_filesystem`).

The run's folder is under BENCH_TMPDIR, by default `var/bench-tmp` in this checkout: on the
disk where the suite keeps its data by default (BLOB_DIR is `var/blobs`), not the system's
temp folder, which is tmpfs on many systems. TMPDIR is set to it for this process and every
process it starts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "var" / "bench-tmp"
# Set while a run's folder is in use: folders made for one measurement are then left to it.
RUN_FOLDER_ENV = "JOBSUITE_BENCH_RUN_FOLDER"


@contextmanager
def run_folder() -> Iterator[Path]:
    """A new folder under BENCH_TMPDIR (or the default) made the temp folder of this process
    and its children for the block; it is deleted, with every folder made in it, at the end."""
    base = Path(os.environ.get("BENCH_TMPDIR") or DEFAULT).expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    saved = {name: os.environ.get(name) for name in ("TMPDIR", RUN_FOLDER_ENV)}
    os.environ.update(TMPDIR=str(folder), **{RUN_FOLDER_ENV: str(folder)})
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    try:
        yield folder
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        tempfile.tempdir = None
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A new folder for one measurement. Inside `run_folder` it stays until the run's end;
    outside one (a module run as a tool of its own) it is deleted at the end of the block."""
    folder = Path(tempfile.mkdtemp(prefix="jobsuite-bench-"))
    try:
        yield folder
    finally:
        if not os.environ.get(RUN_FOLDER_ENV):
            shutil.rmtree(folder, ignore_errors=True)


def filesystem_of(path: Path, mounts_file: Path = Path("/proc/mounts")) -> str:
    """The type of the file system `path` is on (the longest mount point above it)."""
    mount = _mount_of(path, mounts_file)
    return mount[1] if mount else "unknown"


def described_filesystem(
    path: Path, mounts_file: Path = Path("/proc/mounts"), jbd2: Path = Path("/proc/fs/jbd2")
) -> str:
    """`filesystem_of`, and for ext4 whether it has a journal: without one, a new file costs
    more after many deletes (above), so the runner's figures on it move with what was
    deleted in the minutes before."""
    mount = _mount_of(path, mounts_file)
    if mount is None:
        return "unknown"
    device, kind = mount
    if kind != "ext4":
        return kind
    # jbd2 lists each journal it runs as <device>-<journal inode>; no folder, no journal at all.
    name = Path(device).name
    try:
        journalled = any(entry.name.startswith(f"{name}-") for entry in jbd2.iterdir())
    except OSError:
        journalled = False
    return "ext4 with a journal" if journalled else "ext4 without a journal"


def _mount_of(path: Path, mounts_file: Path) -> tuple[str, str] | None:
    """(device, type) of the longest mount point above `path`."""
    best, found = "", None
    try:
        mounts = mounts_file.read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, found = point, (fields[0], fields[2])
    return found
