"""One writer per audit folder: a second audit service (or a rebuild while it runs) would
fork the hash chain, so whoever writes holds an exclusive lock on `<AUDIT_DIR>/audit.lock`."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from shared.errors import JobsuiteError

LOCK_NAME = "audit.lock"


class AuditDirBusy(JobsuiteError):
    """Another process writes to this audit folder."""


class DirLock:
    def __init__(self, audit_dir: Path) -> None:
        audit_dir.mkdir(parents=True, exist_ok=True)
        self.path = audit_dir / LOCK_NAME
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise AuditDirBusy(
                f"{audit_dir} is in use by another audit process (pid {holder}); stop it first"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
