"""The blob store (claim check): large data lives here, messages carry only keys.

Keys are relative POSIX paths such as `inputs/<job id>/photo.jpg`. The store is a folder
shared by every service (a named volume under Docker). Every write is atomic: a temp file in
the same folder, fsync, then rename, so a reader never sees half a file and a crashed writer
leaves nothing under the final name.
"""

from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Protocol

from shared.errors import BlobError
from shared.files import TEMP_PREFIX, atomic_write

_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MANIFEST_NAME = "manifest.json"


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative path, else raise BlobError."""
    parts = key.split("/")
    # fullmatch: with match(), `$` also matches before a final newline ("a.png\n")
    if not key or any(not _SAFE_PART.fullmatch(p) for p in parts):
        raise BlobError(f"invalid blob key {key!r}")
    return key


def input_key(job_id: str, name: str) -> str:
    return validate_key(f"inputs/{job_id}/{name}")


def output_key(job_id: str, name: str) -> str:
    return validate_key(f"outputs/{job_id}/{name}")


def manifest_key(job_id: str) -> str:
    return output_key(job_id, MANIFEST_NAME)


class BlobReader(Protocol):
    def path(self, key: str) -> Path: ...
    def read_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...


class BlobWriter(BlobReader, Protocol):
    def write_bytes(self, key: str, data: bytes) -> str: ...
    def open_for_write(self, key: str) -> AbstractContextManager[IO[bytes]]: ...


class FolderBlobStore:
    """Blobs as files under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise BlobError(f"blob {key!r} does not exist") from None

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise BlobError(f"blob {key!r} does not exist") from None

    def open_for_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A file to write; it appears under `key` only if the block ends cleanly."""
        return atomic_write(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> str:
        with self.open_for_write(key) as f:
            f.write(data)
        return key

    def list(self, prefix: str) -> list[str]:
        """Keys under a folder prefix such as `outputs/<job id>`, sorted, temp files left out."""
        base = self.path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(TEMP_PREFIX)
        )

    def delete_prefix(self, prefix: str) -> None:
        for key in reversed(self.list(prefix)):
            self.path(key).unlink(missing_ok=True)

    # The manifest is written last: its presence means every output of the job is complete.
    def read_manifest(self, job_id: str) -> list[str] | None:
        """The outputs of a finished run, or None: never finished, or its manifest did not
        survive a power cut (manifests are not fsynced: the job then simply runs again)."""
        key = manifest_key(job_id)
        if not self.exists(key):
            return None
        try:
            return list(json.loads(self.read_bytes(key))["outputs"])
        except (ValueError, KeyError, TypeError):
            return None

    def write_manifest(self, job_id: str, outputs: list[str]) -> None:
        """Outputs are fsynced as they are written; the manifest only saves a second run."""
        with atomic_write(self.path(manifest_key(job_id)), durable=False) as f:
            f.write(json.dumps({"outputs": outputs}).encode())
