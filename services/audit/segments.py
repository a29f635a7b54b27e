"""The log's files: size-rotated segments of the hash chain, written append-only and fsynced.

`<AUDIT_DIR>/log/segment-<first seq>.jsonl` holds consecutive records; a new segment starts
when the current one would pass `AUDIT_SEGMENT_BYTES`, its first record chained to the last
record of the one before. Pruning deletes the oldest closed segments and leaves `anchor.json`
(the seq and hash of the last pruned record), so the rest of the chain still verifies.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from services.audit.chain import GENESIS, NO_MARKS, BadRecord, Marks, Record, parse_record, seal
from shared.errors import JobsuiteError
from shared.files import atomic_write, fsync_dir
from shared.log import get_logger

log = get_logger(__name__)

ANCHOR_NAME = "anchor.json"
_SEGMENT = re.compile(r"^segment-(\d+)\.jsonl$")
_TAIL_CHUNK = 64 * 1024


class LogCorrupt(JobsuiteError):
    """The log cannot be read or appended to safely; `jobsuite audit verify` says where."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


# Where an unpruned chain starts: before seq 1, chained to the genesis hash.
ORIGIN = Anchor(0, GENESIS)


def segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:012d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _SEGMENT.match(p.name))]
    return sorted(found)


def read_anchor(directory: Path) -> Anchor | None:
    path = directory / ANCHOR_NAME
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_bytes())
        return Anchor(int(obj["seq"]), str(obj["hash"]))
    except (ValueError, KeyError, TypeError) as e:
        raise LogCorrupt(f"{path} is not a valid anchor: {e}") from None


def write_anchor(directory: Path, anchor: Anchor, pruned: str) -> None:
    body = {"seq": anchor.seq, "hash": anchor.hash, "last_pruned_segment": pruned}
    with atomic_write(directory / ANCHOR_NAME) as f:
        f.write(json.dumps(body).encode())


def read_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number from 1, the line without its newline, whether it was complete)."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            complete = line.endswith(b"\n")
            yield number, line[:-1] if complete else line, complete


def last_line(path: Path) -> bytes | None:
    """The last complete line of a file that ends in a newline, read from the end."""
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return None
        tail = b""
        pos = end
        while pos > 0:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0:
                return tail[cut + 1 : -1]
        return tail[:-1]


def _truncate_torn_tail(path: Path) -> None:
    """A crash mid-write can leave half a line at the end: it was never acked, so drop it."""
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        keep = f.read().rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    log.warning("torn_record_truncated", segment=path.name, bytes_dropped=size - keep)


class AuditLog:
    """The writer: appends batches of records to the current segment, fsynced. One writer
    per directory (the service holds a lock file for that)."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        # Called once a batch is on disk (the checkpoint); its error fails the append,
        # so the batch is not acked, although its records stay in the log.
        self.after_append: Callable[[], None] | None = None
        # Told each new anchor before it is written (the checkpoint that tells a real prune
        # from a hand-written anchor.json); its error stops the prune.
        self.before_anchor: Callable[[Anchor], None] | None = None
        self.base = read_anchor(directory) or ORIGIN
        self.head_seq, self.head_hash = self._recover()

    def _recover(self) -> tuple[int, str]:
        """Find the head of the chain on disk, dropping a torn last line and empty segments."""
        for _first, path in reversed(list_segments(self.directory)):
            _truncate_torn_tail(path)
            raw = last_line(path)
            if raw is None:
                path.unlink()
                continue
            try:
                record = parse_record(raw)
            except BadRecord as e:
                raise LogCorrupt(
                    f"the last record of {path} is broken ({e}); run `jobsuite audit verify`"
                ) from None
            return record.seq, record.hash
        anchor = read_anchor(self.directory)
        return (anchor.seq, anchor.hash) if anchor else (0, GENESIS)

    def append(
        self,
        entries: Sequence[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], Marks]],
        recorded_at: str,
    ) -> list[Record]:
        """Seal and write `(source, event[, marks])` entries; returns once they are on disk."""
        records: list[Record] = []
        seq, prev = self.head_seq, self.head_hash
        for entry in entries:
            seq += 1
            marks = entry[2] if len(entry) == 3 else NO_MARKS
            records.append(seal(seq, prev, recorded_at, entry[0], entry[1], marks))
            prev = records[-1].hash
        if not records:
            return records
        data = b"".join(r.line() for r in records)
        f = self._writable(records[0].seq, len(data))
        start = f.tell()
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            self._undo(start)
            raise
        self.head_seq, self.head_hash = seq, prev
        if self.after_append is not None:
            self.after_append()
        return records

    def _writable(self, first_seq: int, incoming: int) -> BinaryIO:
        if self._file is None:
            segments = list_segments(self.directory)
            if segments and segments[-1][1].stat().st_size < self.segment_bytes:
                self._file = segments[-1][1].open("ab")
        if self._file is not None:
            size = self._file.tell()
            if size > 0 and size + incoming > self.segment_bytes:
                self._file.close()
                self._file = None
        if self._file is None:
            path = self.directory / segment_name(first_seq)
            self._file = path.open("ab")
            fsync_dir(self.directory)
            log.info("segment_started", segment=path.name)
        return self._file

    def _undo(self, start: int) -> None:
        """A failed write must not leave half a batch behind: cut back, or re-read the head."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.truncate(start)
            f.close()
        except OSError:
            log.exception("segment_truncate_failed")
        self.head_seq, self.head_hash = self._recover()

    def records(self, after_seq: int = 0) -> Iterator[Record]:
        """Every complete record with seq > after_seq, in order (for catch-up and rebuild)."""
        segments = list_segments(self.directory)
        for i, (_first, path) in enumerate(segments):
            following = segments[i + 1][0] if i + 1 < len(segments) else None
            if following is not None and following - 1 <= after_seq:
                continue
            for number, raw, complete in read_lines(path):
                if not complete:
                    break
                try:
                    record = parse_record(raw)
                except BadRecord as e:
                    raise LogCorrupt(f"{path.name} line {number}: {e}") from None
                if record.seq > after_seq:
                    yield record

    def prune(self, older_than: float) -> list[str]:
        """Delete the oldest closed segments last written before `older_than` (epoch
        seconds), oldest first and without gaps; the anchor keeps the chain checkable."""
        pruned: list[str] = []
        for _first, path in list_segments(self.directory)[:-1]:
            if path.stat().st_mtime >= older_than:
                break
            raw = last_line(path)
            if raw is not None:
                try:
                    record = parse_record(raw)
                except BadRecord as e:
                    log.error("prune_stopped_broken_segment", segment=path.name, error=str(e))
                    break
                anchor = Anchor(record.seq, record.hash)
                if self.before_anchor is not None:
                    self.before_anchor(anchor)
                write_anchor(self.directory, anchor, path.name)
                self.base = anchor
            path.unlink()
            fsync_dir(self.directory)
            pruned.append(path.name)
        if pruned:
            log.info("segments_pruned", segments=pruned)
        return pruned

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
