"""Durable file writes: a file appears under its final name whole, or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TEMP_PREFIX = ".tmp-"


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(final: Path, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """Yield a temp file beside `final`; it is fsynced and renamed to `final` only if the
    block ends cleanly, and removed otherwise. `durable=False` skips both fsyncs, for files
    whose loss in a power cut costs only work done again, never data."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=TEMP_PREFIX, suffix=final.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, final)
        if durable:
            fsync_dir(final.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
