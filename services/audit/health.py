"""Whether the audit service can write: `/healthz` answers 503 "stalled" when it cannot.

Two signs, either enough: the last batch failed to be written (its events were not acked;
cleared by the next batch that is), or a probe cannot write a block and fsync it in the log
folder or the checkpoint store's folder (read-only, full, gone): an idle service learns of
a folder turned read-only without waiting for an event to fail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.files import WriteProbe


def _cannot_write(folder: Path, error: OSError) -> str:
    return f"cannot write to {folder}: {error.strerror or error}"


class WriteHealth:
    def __init__(
        self, folders: Sequence[Path], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._probe = WriteProbe(folders, _cannot_write, clock=clock)
        self._lock = threading.Lock()
        self._failure: str | None = None

    def failed(self, reason: str) -> None:
        with self._lock:
            self._failure = reason

    def succeeded(self) -> None:
        with self._lock:
            self._failure = None

    def stalled(self) -> str | None:
        """Why the service cannot record now, or None when it can."""
        with self._lock:
            failure = self._failure
        return failure or self._probe()
