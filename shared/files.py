"""Durable file writes: a file appears under its final name whole, or not at all."""

from __future__ import annotations

import errno
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

TEMP_PREFIX = ".tmp-"
# A new temp file, never an existing one, never through a link planted under its name.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folders(folder: Path, *, durable: bool = True) -> None:
    """`folder` and its missing parents; with `durable`, each new folder's entry is fsynced
    in its parent, so a file written into it is not lost with its folder in a power cut."""
    missing = []
    at = folder
    while not at.is_dir() and at != at.parent:
        missing.append(at)
        at = at.parent
    folder.mkdir(parents=True, exist_ok=True)
    if durable:
        for made in reversed(missing):
            fsync_dir(made.parent)


@contextmanager
def atomic_write(final: Path, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """Yield a temp file beside `final`; it is fsynced and renamed to `final` only if the
    block ends cleanly, and removed otherwise. `durable=False` skips both fsyncs, for files
    whose loss in a power cut costs only work done again, never data."""
    make_folders(final.parent, durable=durable)
    folder = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with atomic_write_at(folder, final.name, durable=durable) as f:
            yield f
    finally:
        os.close(folder)


@contextmanager
def atomic_write_at(folder: int, name: str, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """`atomic_write` of `name` in the open folder `folder` (a descriptor): the temp file is
    created exclusively and without following links, then renamed over `name` (a link found
    there is replaced, never written through)."""
    with _temp_beside(folder, name, durable=durable) as fd, os.fdopen(fd, "wb", closefd=False) as f:
        yield f


def atomic_write_bytes_at(folder: int, name: str, data: bytes, *, durable: bool = True) -> None:
    """`atomic_write_at` of bytes in hand, written straight to the descriptor (no file
    object: a blob is one write, and the object's set-up is most of a small one's cost)."""
    with _temp_beside(folder, name, durable=durable) as fd:
        write_all(fd, data)


@contextmanager
def _temp_beside(folder: int, name: str, *, durable: bool) -> Iterator[int]:
    """A descriptor of a new temp file beside `name` in `folder`; once the block ends
    cleanly it is fsynced (`durable`), closed and renamed to `name`, and the folder fsynced;
    otherwise it is removed."""
    temp = _temp_name(name)
    fd = os.open(temp, _NEW_FILE, 0o600, dir_fd=folder)
    try:
        try:
            yield fd
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        if durable:
            os.fsync(folder)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder)
        raise


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _temp_name(name: str) -> str:
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}{os.path.splitext(name)[1]}"


class StagedFile:
    """`atomic_write_at` in two steps, for a caller on an event loop: made here, `data` is in
    a new temp file beside `name` (in the page cache: no fsync, nothing waited on);
    `commit()` fsyncs it, renames it to `name` and fsyncs the folder, then each of
    `made_in` (the parents of folders made for it, so their entries are durable too): the
    steps that wait on the disk, for a thread. `discard()` removes it. One of the two, once:
    either releases the descriptors. The folder descriptor is the caller's, and a copy is
    kept; those of `made_in` are taken over (the list is emptied)."""

    def __init__(self, folder: int, name: str, data: bytes, made_in: list[int]) -> None:
        self._parents = list(made_in)
        made_in.clear()
        self._name = name
        self._temp = _temp_name(name)
        self._folder = -1
        self._fd = -1
        try:
            self._folder = os.dup(folder)
            self._fd = os.open(self._temp, _NEW_FILE, 0o600, dir_fd=self._folder)
            write_all(self._fd, data)
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        try:
            os.fsync(self._fd)
            os.rename(self._temp, self._name, src_dir_fd=self._folder, dst_dir_fd=self._folder)
            for fd in (self._folder, *self._parents):
                os.fsync(fd)
        except BaseException:
            self.discard()  # after the rename it removes nothing: the blob is whole
            raise
        self._close()

    def discard(self) -> None:
        if self._folder >= 0:
            with suppress(FileNotFoundError):
                os.unlink(self._temp, dir_fd=self._folder)
        self._close()

    def _close(self) -> None:
        for fd in (self._fd, self._folder, *self._parents):
            if fd >= 0:
                os.close(fd)
        self._fd = self._folder = -1
        self._parents = []


# A disk (or a quota) that is full: a passing fault of the machine, never of the job.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLite's own "database or disk is full", which carries no errno


def disk_full_cause(error: BaseException) -> BaseException | None:
    """The full-disk error behind `error` (itself, or what it was raised from), or None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return current
        current = current.__cause__ or current.__context__
    return None


def describe_os_error(error: OSError) -> str:
    """`ENOSPC (No space left on device)`: the cause by name, for logs and answers."""
    name = errno.errorcode.get(error.errno or 0, type(error).__name__)
    return f"{name} ({error.strerror or error})"


_PROBE_BYTES = b"\0" * 4096  # a whole block: a full disk refuses it even where 1 byte fits


def probe_write(folder: Path) -> None:
    """Write a block to a new file in `folder`, fsync it and delete it: OSError when the
    folder takes no writes (read-only, full, gone). The name is a temp file's, so a listing
    of the folder never takes it for data."""
    path = folder / f"{TEMP_PREFIX}probe-{os.getpid()}-{threading.get_ident()}"
    fd = os.open(path, _NEW_FILE, 0o600)
    try:
        os.write(fd, _PROBE_BYTES)
        os.fsync(fd)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


class WriteProbe:
    """Why the first of `folders` that takes no write cannot, or None: `probe_write` run at
    most once every `interval` seconds (health and readiness checks come every second or so
    from each orchestrator); in between, the last answer. Thread-safe."""

    def __init__(
        self,
        folders: Sequence[Path],
        describe: Callable[[Path, OSError], str],
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folders = list(folders)
        self.describe = describe
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, str | None] | None = None

    def __call__(self) -> str | None:
        with self._lock:
            now = self.clock()
            if self._last is None or now - self._last[0] >= self.interval:
                self._last = (now, self._probe())
            return self._last[1]

    def forget(self) -> None:
        """The next call probes again, whatever the last one found."""
        with self._lock:
            self._last = None

    def _probe(self) -> str | None:
        for folder in self.folders:
            try:
                probe_write(folder)
            except OSError as e:
                return self.describe(folder, e)
        return None
