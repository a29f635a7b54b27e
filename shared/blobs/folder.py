"""The blob store as a folder shared by every service (a named volume under Docker).

A key is a file under the folder. Every write goes to a temp file beside its final name,
fsynced, then renamed (`shared/files.py`), so a reader never sees half a file and a crashed
writer leaves nothing under the key. The folder itself never leaves this module: services get
bytes and file objects, never a path.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

from shared.blobs.keys import Manifest, decode_manifest, encode_manifest, manifest_key, validate_key
from shared.errors import BlobError
from shared.files import TEMP_PREFIX, atomic_write

# What a key that is not a whole file raises: absent, a folder, or below a file.
_NOT_A_FILE = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class FolderBlobStore:
    """Blobs as files under one root folder (a `BlobStore`, see `shared/blobs/store.py`)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FolderBlobStore({str(self._root)!r})"

    def _file(self, key: str) -> Path:
        return self._root / validate_key(key)

    def exists(self, key: str) -> bool:
        return self._file(key).is_file()

    def size(self, key: str) -> int:
        try:
            found = self._file(key).stat()
        except _NOT_A_FILE:
            raise _missing(key) from None
        if not stat.S_ISREG(found.st_mode):
            raise _missing(key)
        return found.st_size

    @contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        try:
            f = self._file(key).open("rb")
        except _NOT_A_FILE:
            raise _missing(key) from None
        with f:
            yield f

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def open_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return atomic_write(self._file(key))

    def write_bytes(self, key: str, data: bytes) -> str:
        with self.open_write(key) as f:
            f.write(data)
        return key

    def list(self, prefix: str) -> builtins.list[str]:
        base = self._file(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self._root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(TEMP_PREFIX)
        )

    def delete_prefix(self, prefix: str) -> None:
        base = self._file(prefix)
        for key in reversed(self.list(prefix)):
            (self._root / key).unlink(missing_ok=True)
        if not base.is_dir():
            return
        # Deepest first; a folder still holding something (a write in progress) stays.
        folders = sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for folder in [*folders, base]:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def read_manifest(self, job_id: str) -> Manifest | None:
        key = manifest_key(job_id)  # a bad job id is a BlobError, not "unfinished"
        try:
            return decode_manifest(self.read_bytes(key))
        except BlobError:
            return None

    def write_manifest(
        self, job_id: str, outputs: builtins.list[str], client: str | None = None
    ) -> None:
        # Outputs are fsynced as they are written; the manifest only saves a second run, so a
        # power cut may lose or tear it (it then reads as unfinished) and it skips the fsyncs.
        with atomic_write(self._file(manifest_key(job_id)), durable=False) as f:
            f.write(encode_manifest(outputs, client))

    def check_writable(self) -> str | None:
        if os.access(self._root, os.W_OK):
            return None
        return f"the blob folder {self._root} is missing or not writable"


def _missing(key: str) -> BlobError:
    return BlobError(f"blob {key!r} does not exist")
