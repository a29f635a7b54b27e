"""A folder that really refuses writes, for disk-full tests without faking the OS.

As root: a tiny tmpfs mounted on the folder and filled to the brim (ENOSPC), unmounted at the
end. Otherwise (root is needed to mount): the folder made read-only (EACCES), which every path
that handles a full disk handles alike, except the workers' ENOSPC back-off (`needs_mount`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CAN_MOUNT = os.geteuid() == 0
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason="a real ENOSPC needs a tmpfs (root)")


@contextmanager
def full_folder(folder: Path) -> Iterator[int]:
    """Make `folder` (created if missing) refuse writes for the block; yields the errno that
    writes there meet. What was in it before is hidden while it lasts (as root)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not CAN_MOUNT:
        folder.chmod(0o555)
        try:
            yield errno.EACCES
        finally:
            folder.chmod(0o755)
        return
    with tmpfs(folder):
        fill(folder)
        yield errno.ENOSPC


@contextmanager
def tmpfs(folder: Path, size: str = "256k") -> Iterator[Path]:
    """A small tmpfs mounted on `folder` for the block (root only)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Write into `folder` until its file system says ENOSPC."""
    with contextlib.suppress(OSError), (folder / ".filler").open("wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


def make_room(folder: Path) -> None:
    (folder / ".filler").unlink(missing_ok=True)
