"""The blob store as a folder shared by every service (a named volume under Docker).

A key is a file under the folder. Every write goes to an exclusive temp file beside its final
name, fsynced, then renamed (`shared/files.py`), so a reader never sees half a file and a
crashed writer leaves nothing under the key. Nothing is reached through a symbolic link: every
path is walked with `O_NOFOLLOW` from the root (`nofollow.py`), and a link met on the way is a
BlobLinkError. The folder itself never leaves this module: services get bytes and file
objects, never a path.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from shared.blobs.keys import Manifest, decode_manifest, encode_manifest, manifest_key, validate_key
from shared.blobs.nofollow import (
    DIR_FLAGS,
    check_regular,
    link_error,
    open_file,
    open_folder,
    open_sized,
    read_all,
)
from shared.errors import BlobError, BlobLinkError
from shared.files import (
    TEMP_PREFIX,
    StagedFile,
    WriteProbe,
    atomic_write_at,
    atomic_write_bytes_at,
    describe_os_error,
)

# What a key that is not a whole file raises: absent, a folder, or below a file.
_NOT_A_FILE = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class FolderBlobStore:
    """Blobs as files under one root folder (a `BlobStore`, see `shared/blobs/store.py`)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._top = os.fspath(self._root)  # what each walk opens: no Path to convert per call
        # Writes, fsyncs and deletes a block (at most once a second): a full or read-only
        # disk reads as not writable.
        self._writable = WriteProbe([self._root], _not_writable)

    def __repr__(self) -> str:
        return f"FolderBlobStore({str(self._root)!r})"

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self.size(key)
        except BlobLinkError:
            raise
        except BlobError:
            return False
        return True

    def size(self, key: str) -> int:
        *folders, name = validate_key(key).split("/")
        try:
            with open_folder(self._top, folders) as folder:
                found = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except _NOT_A_FILE:
            raise _missing(key) from None
        if stat.S_ISLNK(found.st_mode):
            raise link_error(key)
        try:
            check_regular(found, key)
        except IsADirectoryError:
            raise _missing(key) from None
        return found.st_size

    @contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        *folders, name = validate_key(key).split("/")
        try:
            with open_folder(self._top, folders) as folder:
                fd = open_file(folder, name, key)
        except _NOT_A_FILE:
            raise _missing(key) from None
        with os.fdopen(fd, "rb") as f:
            yield f

    def read_bytes(self, key: str) -> bytes:
        *folders, name = validate_key(key).split("/")
        try:
            with open_folder(self._top, folders) as folder:
                fd, size = open_sized(folder, name, key)
        except _NOT_A_FILE:
            raise _missing(key) from None
        try:
            return read_all(fd, size)
        finally:
            os.close(fd)

    def open_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self._write(key, durable=True)

    @contextmanager
    def _write(self, key: str, *, durable: bool) -> Iterator[IO[bytes]]:
        with (
            self._folder_to_write(key, durable=durable) as (folder, name),
            atomic_write_at(folder, name, durable=durable) as f,
        ):
            yield f

    @contextmanager
    def _folder_to_write(self, key: str, *, durable: bool) -> Iterator[tuple[int, str]]:
        """The open folder of `key`, made on the way, and the blob's name in it; once the
        block has put the blob there, each new folder's entry is fsynced (`durable`)."""
        *folders, name = validate_key(key).split("/")
        with _new_folders_parents() as made_in:
            keep = _kept_in(made_in) if durable else None
            with open_folder(self._top, folders, create=True, on_made=keep) as folder:
                yield folder, name
            for fd in made_in:  # the new folders' entries, once the blob is in them
                os.fsync(fd)

    def write_bytes(self, key: str, data: bytes) -> str:
        self._write_bytes(key, data, durable=True)
        return key

    def _write_bytes(self, key: str, data: bytes, *, durable: bool) -> None:
        """`_write` of bytes in hand, with no file object."""
        with self._folder_to_write(key, durable=durable) as (folder, name):
            atomic_write_bytes_at(folder, name, data, durable=durable)

    def stage_bytes(self, key: str, data: bytes) -> StagedFile:
        *folders, name = validate_key(key).split("/")
        with (
            _new_folders_parents() as made_in,  # fsynced by commit(): no waiting here
            open_folder(self._top, folders, create=True, on_made=_kept_in(made_in)) as folder,
        ):
            return StagedFile(folder, name, data, made_in)

    def list(self, prefix: str) -> builtins.list[str]:
        """Regular files only: a link inside the prefix is neither listed nor followed."""
        return [key for key, _mtime in self._walk(prefix)]

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, datetime]]:
        return [(key, datetime.fromtimestamp(t, UTC)) for key, t in self._walk(prefix)]

    def _walk(self, prefix: str) -> builtins.list[tuple[str, float]]:
        parts = validate_key(prefix).split("/")
        try:
            with open_folder(self._top, parts) as folder:
                return sorted(_files(folder, prefix))
        except _NOT_A_FILE:
            return []

    def delete_prefix(self, prefix: str) -> None:
        """Links inside the prefix are removed as links; what they point at is untouched."""
        *parents, name = validate_key(prefix).split("/")
        try:
            with open_folder(self._top, parents) as parent:
                if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=parent)
                else:
                    _remove_folder(parent, name)
        except _NOT_A_FILE:
            return

    def read_manifest(self, job_id: str) -> Manifest | None:
        key = manifest_key(job_id)  # a bad job id is a BlobError, not "unfinished"
        try:
            data = self.read_bytes(key)
        except BlobLinkError:
            raise  # a planted manifest is not "unfinished": the job meets the link and dies
        except BlobError:
            return None
        return decode_manifest(data)

    def write_manifest(
        self, job_id: str, outputs: builtins.list[str], client: str | None = None
    ) -> None:
        # Outputs are fsynced as they are written; the manifest only saves a second run, so a
        # power cut may lose or tear it (it then reads as unfinished) and it skips the fsyncs.
        self._write_bytes(manifest_key(job_id), encode_manifest(outputs, client), durable=False)

    def download_url(self, key: str, *, disposition: str, media_type: str) -> str | None:
        """None: a folder has no URL of its own (the gateway streams the blob)."""
        self.size(key)  # missing or a link: as every read says so
        return None

    def check_writable(self) -> str | None:
        if not os.access(self._root, os.W_OK):
            return f"the blob folder {self._root} is missing or not writable"
        return self._writable()


@contextmanager
def _new_folders_parents() -> Iterator[builtins.list[int]]:
    """A list for the descriptors of the parents of the folders a write makes (to fsync once
    the blob is in them: a new folder's entry survives a power cut only then, on a file
    system without a journal); those still in it at the end of the block are closed."""
    kept: builtins.list[int] = []
    try:
        yield kept
    finally:
        for fd in kept:
            os.close(fd)


def _kept_in(kept: builtins.list[int]) -> Callable[[int], None]:
    """`open_folder`'s on_made: a copy of each new folder's parent into `kept`."""
    return lambda folder: kept.append(os.dup(folder))


def _not_writable(folder: Path, error: OSError) -> str:
    return f"the blob folder {folder} is not writable: {describe_os_error(error)}"


def _files(folder: int, prefix: str) -> Iterator[tuple[str, float]]:
    """(key, mtime) of each regular file under the open `folder`."""
    with os.scandir(folder) as entries:
        found = [
            (e.name, e.is_file(follow_symlinks=False), e.is_dir(follow_symlinks=False), e)
            for e in entries
        ]
    for name, is_file, is_dir, entry in found:
        if name.startswith(TEMP_PREFIX):
            continue
        if is_file:
            try:
                yield f"{prefix}/{name}", entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue  # deleted meanwhile
        elif is_dir:
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=folder)
            except OSError:
                continue  # gone, or swapped for a link, meanwhile
            try:
                yield from _files(child, f"{prefix}/{name}")
            finally:
                os.close(child)


def _remove_folder(parent: int, name: str) -> None:
    """Remove the blobs and links under `parent/name`, then the folders it emptied (a folder
    still holding a write in progress stays)."""
    try:
        folder = os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError:
        return  # a plain file, gone, or not ours to walk into
    try:
        with os.scandir(folder) as entries:
            found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for entry, is_dir in found:
            if is_dir:
                _remove_folder(folder, entry)
            elif not entry.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry, dir_fd=folder)
    finally:
        os.close(folder)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=parent)


def _missing(key: str) -> BlobError:
    return BlobError(f"blob {key!r} does not exist")
