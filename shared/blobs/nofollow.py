"""Reaching files under the blob folder without ever following a symbolic link.

A key is walked one folder at a time from a descriptor of the root: each folder is opened
with `O_DIRECTORY | O_NOFOLLOW` relative to the one before (`dir_fd`), and the file last with
`O_NOFOLLOW`, so a link planted anywhere on the way (`inputs` itself, `inputs/<id>`, the file)
is met as a link and refused (BlobLinkError), never followed out of the store. Where
`/proc/self/fd` exists the folder reached is also checked to lie under the root (a bind mount
or a race cannot lead elsewhere). The root itself is the operator's choice and may be a link.

Plain POSIX calls only (no `openat2`), so it works the same on Linux and macOS.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shared.errors import BlobLinkError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a key is opened without waiting for a writer, then refused.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_PROC_FD = "/proc/self/fd"
# Linux reads at most this much in one call, file or not (MAX_RW_COUNT).
_ONE_READ_MAX = 0x7FFFF000


def link_error(shown: str) -> BlobLinkError:
    return BlobLinkError(f"{shown!r} in the blob store is a symbolic link (links are not followed)")


def is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


@contextmanager
def open_folder(
    root: str | Path,
    parts: Sequence[str],
    *,
    create: bool = False,
    on_made: Callable[[int], None] | None = None,
) -> Iterator[int]:
    """A descriptor of the folder `root/parts…`, closed at the end of the block. Missing
    folders are FileNotFoundError, or made on the way with `create`; a link is BlobLinkError.
    The parent of each folder made here goes to `on_made` (a descriptor valid during the
    call): a durable write fsyncs it, so the new folder's entry survives a power cut."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fd = top
    try:
        for depth, part in enumerate(parts, 1):
            child, made = _child_folder(fd, part, parts, depth, create=create)
            if made and on_made is not None:
                try:
                    on_made(fd)
                except BaseException:
                    os.close(child)
                    raise
            if fd != top:
                os.close(fd)
            fd = child
        if parts:
            # Both paths read now, once the walk has arrived (a walk that ends early reads
            # none): the root's as opened (a readlink, where a realpath would lstat every
            # component of its path), and the folder reached.
            _check_inside(fd, _path_of(top), "/".join(parts))
        yield fd
    finally:
        if fd != top:
            os.close(fd)
        os.close(top)


def open_file(folder: int, name: str, shown: str) -> int:
    """A read descriptor of the regular file `name` in `folder`; a link is BlobLinkError,
    anything else that is not a regular file is IsADirectoryError (no blob there)."""
    return open_sized(folder, name, shown)[0]


def open_sized(folder: int, name: str, shown: str) -> tuple[int, int]:
    """`open_file`, and the file's size as opened."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        raise
    except OSError:
        if is_link(folder, name):
            raise link_error(shown) from None
        raise
    try:
        found = os.fstat(fd)
        check_regular(found, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd, found.st_size


def read_all(fd: int, size: int) -> bytes:
    """The whole file open at `fd`, its size `size` when opened: one read when it has not
    grown since (a regular file reads short only at its end, or past what one call reads)."""
    data = os.read(fd, size + 1)
    if len(data) <= size and size < _ONE_READ_MAX:
        return data
    chunks = [data]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def check_regular(found: os.stat_result, shown: str) -> None:
    """A blob is a regular file with one name: IsADirectoryError for anything else (a folder,
    a FIFO, a device), BlobLinkError for a hard link (a second name of a file elsewhere)."""
    if not stat.S_ISREG(found.st_mode):
        raise IsADirectoryError(f"{shown} is not a regular file")
    if found.st_nlink > 1:  # every blob is written as a new file and renamed: one name
        raise BlobLinkError(f"{shown!r} in the blob store is a hard link (links are not followed)")


def _child_folder(
    folder: int, name: str, parts: Sequence[str], depth: int, *, create: bool
) -> tuple[int, bool]:
    """The open child folder `name` (`parts[depth - 1]`), and whether it was made here."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=folder), False
    except FileNotFoundError:
        if not create:
            raise
    except OSError:  # ELOOP (ENOTDIR, EMLINK elsewhere) for a link: say which
        if is_link(folder, name):
            raise link_error("/".join(parts[:depth])) from None
        raise
    made = True
    try:
        os.mkdir(name, dir_fd=folder)
    except FileExistsError:  # another writer made it first (and makes it durable)
        made = False
    child, _ = _child_folder(folder, name, parts, depth, create=False)  # a link is refused
    return child, made


def _path_of(fd: int) -> str | None:
    """The path the open folder `fd` has now; None without /proc (the O_NOFOLLOW walk is
    then the guarantee)."""
    try:
        return os.readlink(f"{_PROC_FD}/{fd}")
    except OSError:
        return None


def _check_inside(fd: int, top: str | None, shown: str) -> None:
    """`fd`, reached from the root whose path is `top`, still lies under it."""
    reached = _path_of(fd)
    if reached is None or top is None:
        return
    if reached.endswith(" (deleted)"):  # removed meanwhile: as if it never was
        raise FileNotFoundError(shown)
    if reached != top and not reached.startswith(top.rstrip("/") + "/"):
        raise BlobLinkError(f"{shown!r} leads outside the blob store (links are not followed)")
