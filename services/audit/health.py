"""Whether the audit service can write: `/healthz` answers 503 "stalled" when it cannot.

Two signs, either enough: the last batch failed to be written (its events were not acked;
cleared by the next batch that is), or a probe cannot write a block and fsync it in the log
folder or the checkpoint store's folder (read-only, full, gone): an idle service learns of
a folder turned read-only without waiting for an event to fail.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PROBE_BYTES = 4096  # a whole block, so a full disk fails the probe
_PROBE_EVERY_S = 1.0


def probe(folder: Path) -> str | None:
    """Why `folder` cannot take a write, or None."""
    path = folder / f".write-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * _PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)
    except OSError as e:
        return f"cannot write to {folder}: {e.strerror or e}"
    return None


class WriteHealth:
    def __init__(
        self, folders: Sequence[Path], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.folders = list(folders)
        self.clock = clock
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._probed: tuple[float, str | None] | None = None

    def failed(self, reason: str) -> None:
        with self._lock:
            self._failure = reason

    def succeeded(self) -> None:
        with self._lock:
            self._failure = None

    def stalled(self) -> str | None:
        """Why the service cannot record now, or None when it can."""
        with self._lock:
            if self._failure:
                return self._failure
            now = self.clock()
            if self._probed is None or now - self._probed[0] >= _PROBE_EVERY_S:
                found = next((r for f in self.folders if (r := probe(f))), None)
                self._probed = (now, found)
            return self._probed[1]
