"""MAX_OUTPUT_BYTES: what one job may write, all its outputs together.

The handler sees the blob store through `BudgetedBlobs`, which counts every byte it writes
and refuses the write that would go over the budget with `OutputLimitExceeded` (permanent,
`limit_exceeded`). That write leaves nothing (writes are atomic); `run_handler_once` deletes
the outputs written before it, so a job over its budget leaves neither outputs nor manifest.
"""

from __future__ import annotations

import builtins
import io
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import IO, Any

from shared.blobs import BlobStore
from shared.blobs.keys import Manifest
from shared.blobs.store import StagedBlob
from shared.errors import PermanentJobError


class OutputLimitExceeded(PermanentJobError):
    def __init__(self, key: str, limit: int) -> None:
        super().__init__(
            f"writing {key} would take this job's outputs over {limit} bytes"
            " (MAX_OUTPUT_BYTES); no output is kept",
            kind="limit_exceeded",
        )


class BudgetedBlobs:
    """A BlobStore whose writes draw on one job's output budget; reads pass through."""

    def __init__(self, blobs: BlobStore, limit: int) -> None:
        self._blobs = blobs
        self.limit = limit
        self.written = 0

    def spend(self, key: str, size: int) -> None:
        if self.written + size > self.limit:
            raise OutputLimitExceeded(key, self.limit)
        self.written += size

    # --- writes, counted ------------------------------------------------------------------

    def write_bytes(self, key: str, data: bytes) -> str:
        self.spend(key, len(data))
        return self._blobs.write_bytes(key, data)

    @contextmanager
    def _open_write(self, key: str) -> Iterator[IO[bytes]]:
        with self._blobs.open_write(key) as f:
            yield _CountedWriter(f, self, key)  # type: ignore[misc]

    def open_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self._open_write(key)

    def stage_bytes(self, key: str, data: bytes) -> StagedBlob:
        self.spend(key, len(data))
        return self._blobs.stage_bytes(key, data)

    # --- everything else, as the store does it ----------------------------------------------

    def exists(self, key: str) -> bool:
        return self._blobs.exists(key)

    def size(self, key: str) -> int:
        return self._blobs.size(key)

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self._blobs.open_read(key)

    def read_bytes(self, key: str) -> bytes:
        return self._blobs.read_bytes(key)

    def list(self, prefix: str) -> builtins.list[str]:
        return self._blobs.list(prefix)

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, datetime]]:
        return self._blobs.list_modified(prefix)

    def delete_prefix(self, prefix: str) -> None:
        self._blobs.delete_prefix(prefix)

    def read_manifest(self, job_id: str) -> Manifest | None:
        return self._blobs.read_manifest(job_id)

    def write_manifest(
        self, job_id: str, outputs: builtins.list[str], client: str | None = None
    ) -> None:
        self._blobs.write_manifest(job_id, outputs, client)

    def download_url(self, key: str, *, disposition: str, media_type: str) -> str | None:
        return self._blobs.download_url(key, disposition=disposition, media_type=media_type)

    def check_writable(self) -> str | None:
        return self._blobs.check_writable()


class _CountedWriter:
    """A file being written whose growth is charged to the budget before it happens.

    Growth is measured as the furthest point written, so a writer that seeks back to patch
    a header (as some image encoders do) pays once. No `fileno`: an encoder handed a file
    descriptor would write past the count (Pillow falls back to `write` without one).
    """

    def __init__(self, f: IO[bytes], budget: BudgetedBlobs, key: str) -> None:
        self._f = f
        self._budget = budget
        self._key = key
        self._end = 0

    def write(self, data: Any) -> int:
        end = self._f.tell() + memoryview(data).nbytes
        if end > self._end:
            self._budget.spend(self._key, end - self._end)
            self._end = end
        return self._f.write(data)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("writes are counted: no file descriptor")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)
