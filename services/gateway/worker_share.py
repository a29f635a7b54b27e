"""What a gateway's worker processes (GATEWAY_WORKERS above 1) share: a folder made for the
gateway's run, holding the table of every key's submission rate and each process's metrics
files and a mark of each worker that has begun serving; and which of them a process is (the
first runs the blob janitor)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.gateway.shared_buckets import make_table


@dataclass(frozen=True)
class WorkerShare:
    folder: Path
    index: int  # 0 for the first worker

    @property
    def rate_table(self) -> Path:
        return self.folder / "rates"

    @property
    def metrics_folder(self) -> Path:
        return self.folder / "metrics"

    def mark_serving(self) -> None:
        """This worker (the calling process) serves requests now."""
        self._serving(os.getpid()).touch()

    def has_served(self, pid: int) -> bool:
        return self._serving(pid).exists()

    def forget(self, pid: int) -> None:
        self._serving(pid).unlink(missing_ok=True)

    def _serving(self, pid: int) -> Path:
        return self.folder / f"serving-{pid}"

    def prepare(self) -> None:
        """The table and the metrics folder, empty, before any worker starts."""
        make_table(self.rate_table)
        self.metrics_folder.mkdir()
