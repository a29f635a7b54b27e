"""`BlobStore`: the one interface through which every service reaches blobs.

Large data lives in the store, messages carry only keys (the claim check). The interface
streams and never hands out a local path, so a folder today and an object store later are
interchangeable without a change to any service.

Guarantees every store gives:
- every key is checked with `validate_key` before use: a bad key is a BlobError;
- a write is atomic: the blob appears under its key whole, or not at all (a writer that fails
  or crashes leaves nothing under the key, and a reader never sees half a blob);
- the manifest of a job (`outputs/<job id>/manifest.json`) is written last: its presence means
  every output it lists is complete;
- nothing is reached through a link: a key whose path holds a symbolic (or hard) link is a
  BlobLinkError (a BlobError saying "is a symbolic link"), so nothing outside the store is
  read or written;
- errors: BlobError for a bad key or a missing blob; OSError for a store that fails (disk
  full, permissions, the network), which callers treat as a passing fault (a full disk,
  ENOSPC or EDQUOT, as one that lasts: see shared/worker/settle.py).
"""

from __future__ import annotations

import builtins
from contextlib import AbstractContextManager
from datetime import datetime
from typing import IO, Protocol

from shared.blobs.keys import Manifest


class StagedBlob(Protocol):
    """A blob handed to the store but not yet stored (`BlobStore.stage_bytes`)."""

    def commit(self) -> None:
        """Store it, durably, under its key; blocks on the disk or the network (call it in
        a thread). Raises as `write_bytes` does, and then nothing is kept of it."""
        ...

    def discard(self) -> None:
        """Drop it: nothing is stored under its key."""
        ...


class BlobStore(Protocol):
    def exists(self, key: str) -> bool:
        """Whether a whole blob is stored under `key`."""
        ...

    def size(self, key: str) -> int:
        """The blob's length in bytes; BlobError when it does not exist."""
        ...

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A binary file object to read the blob from, closed at the end of the block;
        BlobError when it does not exist."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The whole blob; BlobError when it does not exist."""
        ...

    def open_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A binary file object to write; what was written appears under `key` only when the
        block ends cleanly (replacing any earlier blob), and nothing does otherwise."""
        ...

    def write_bytes(self, key: str, data: bytes) -> str:
        """Store `data` under `key` atomically, durably; return `key`."""
        ...

    def stage_bytes(self, key: str, data: bytes) -> StagedBlob:
        """`write_bytes` split for a caller on an event loop: this call does only cheap local
        work (a folder: a temp file written, not flushed; S3: nothing) and the StagedBlob's
        `commit()` the waiting, in a thread. Nothing is under `key` before `commit()`
        returns; the caller ends every staged blob with `commit()` or `discard()`."""
        ...

    def list(self, prefix: str) -> builtins.list[str]:
        """The keys under a folder-like prefix such as `outputs/<job id>`, sorted; writes in
        progress are not listed."""
        ...

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, datetime]]:
        """`list(prefix)` with when each blob was last written (aware, UTC; a folder's file
        mtime, an object's LastModified), for the janitor (`shared/blobs/janitor.py`)."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Delete every blob under the prefix (and, in a folder, the folders it emptied)."""
        ...

    def read_manifest(self, job_id: str) -> Manifest | None:
        """The outputs (and owner) of a finished run of the job, or None: never finished, or
        its manifest did not survive a power cut (the job then simply runs again)."""
        ...

    def write_manifest(
        self, job_id: str, outputs: builtins.list[str], client: str | None = None
    ) -> None:
        """Record the job's outputs as complete, and its owner (`Job.client`); call it after
        every output is written."""
        ...

    def download_url(self, key: str, *, disposition: str, media_type: str) -> str | None:
        """A short-lived URL a client may GET the blob from directly (byte ranges too), that
        answers with this Content-Disposition and Content-Type; None when the store has none
        (a folder).
        BlobError when the blob does not exist."""
        ...

    def check_writable(self) -> str | None:
        """None when the store takes writes, else why not (for a readiness check): a real
        write, so a full disk says so; cheap enough to call every second."""
        ...
