"""The submission-rate buckets of all of a gateway's worker processes (GATEWAY_WORKERS): a
table in a file each process maps, changed under an exclusive `flock`.

A slot is a key name's 64-bit digest (0: free), its tokens and the time they were counted
(CLOCK_MONOTONIC, the same in every process). A name's slot is found by its digest, the next
free one taken when it is new (linear probing); slots are never freed: the table outlives
only the gateway's run, and holds far more keys than a key store does. Should it ever be
full, a new key gets a bucket of its own process's (`LocalBuckets`): its rate then holds per
process, as across replicas, and an error says so once.

`flock` and not a lock in shared memory: the kernel lets go of a process's lock when it dies,
so a worker killed mid-update stops none of the others.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
from pathlib import Path

from services.gateway.ratelimit import LocalBuckets, take_token
from shared.log import get_logger

log = get_logger(__name__)

SLOT = struct.Struct("<Qdd")  # digest, tokens, at
_DIGEST, _BUCKET = struct.Struct("<Q"), struct.Struct("<dd")  # a slot's two parts
SLOTS = 1 << 14  # 384 KiB


def make_table(path: Path, slots: int = SLOTS) -> None:
    """An empty table at `path` (every slot free), for the worker processes to open."""
    with open(path, "wb") as f:
        f.truncate(slots * SLOT.size)


def _digest(name: str) -> int:
    value = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
    return value or 1  # 0 marks a free slot


class SharedBuckets:
    """`Buckets` in the table at `path` (made by `make_table`); open it in each process, after
    the fork: a lock is held by an open file, and one opened before would be shared."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        size = os.fstat(self._fd).st_size
        if size == 0 or size % SLOT.size:
            os.close(self._fd)
            raise ValueError(f"{path} is not a bucket table ({size} bytes)")
        self._slots = size // SLOT.size
        self._map = mmap.mmap(self._fd, size)
        self._overflow = LocalBuckets()
        self._overflow_told = False

    def take(self, name: str, rate: float, burst: int, now: float) -> float:
        digest = _digest(name)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            offset = self._slot_of(digest)
            if offset is None:
                return self._take_here(name, rate, burst, now)
            held, tokens, at = SLOT.unpack_from(self._map, offset)
            if held == 0:  # a new key: a full bucket
                tokens, at = float(burst), now
            tokens, at, wait = take_token(tokens, at, rate, burst, now)
            # The bucket, then the digest that makes the slot taken, each as one copy of
            # bytes packed beforehand (pack_into zeroes its bytes before filling them): a
            # process killed between the two leaves a free slot, never a taken slot reset.
            self._map[offset + _DIGEST.size : offset + SLOT.size] = _BUCKET.pack(tokens, at)
            if held == 0:
                self._map[offset : offset + _DIGEST.size] = _DIGEST.pack(digest)
            return wait
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot_of(self, digest: int) -> int | None:
        """The byte offset of `digest`'s slot, or of the free one it is to take; None when
        every slot is another name's."""
        first = digest % self._slots
        for i in range(self._slots):
            offset = ((first + i) % self._slots) * SLOT.size
            (held,) = _DIGEST.unpack_from(self._map, offset)
            if held in (0, digest):
                return offset
        return None

    def _take_here(self, name: str, rate: float, burst: int, now: float) -> float:
        if not self._overflow_told:
            self._overflow_told = True
            log.error(
                "rate_table_full",
                slots=self._slots,
                detail="keys not in the table are rate limited per gateway process",
            )
        return self._overflow.take(name, rate, burst, now)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
