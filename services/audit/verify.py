"""Checking the whole chain across segments, and naming the first record that breaks it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from services.audit.chain import GENESIS, BadRecord, link_error, parse_record
from services.audit.segments import ORIGIN, Anchor, list_segments, read_anchor, read_lines

LOG_DIRNAME = "log"


@dataclass
class Report:
    records: int = 0
    segments: int = 0
    first_seq: int | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    base: Anchor = ORIGIN
    """What the checked chain starts from: anchor.json, or seq 0 and the genesis hash."""
    hashes: dict[int, str] = field(default_factory=dict)
    """The hash of each record asked for by seq (the checkpoints' seqs)."""

    @property
    def ok(self) -> bool:
        return self.problem is None


def log_dir_of(path: Path) -> Path:
    """Accept the audit folder or its `log/` folder."""
    return path / LOG_DIRNAME if (path / LOG_DIRNAME).is_dir() else path


def verify(path: Path, recorded_head: int | None = None, wanted: Collection[int] = ()) -> Report:
    """Verify a log folder (or one segment file). `recorded_head`, the last seq the read
    model has seen, catches records cut off the end of the log; the hashes of the records
    at the seqs in `wanted` are kept in the report."""
    if path.is_file():
        report = _verify_segments([path], start=None, wanted=wanted)
    else:
        report = _verify_folder(log_dir_of(path), wanted)
    if report.ok and recorded_head is not None and report.head_seq < recorded_head:
        report.problem = (
            f"the log ends at seq {report.head_seq} but the read model recorded up to seq "
            f"{recorded_head}: records were removed from the end"
        )
    return report


def _verify_folder(directory: Path, wanted: Collection[int]) -> Report:
    if not directory.is_dir():
        return Report(problem=f"{directory} is not a folder")
    anchor = read_anchor(directory)
    segments = list_segments(directory)
    notes = []
    if anchor is not None:
        # A prune interrupted between writing the anchor and deleting a segment.
        kept = [
            s
            for i, s in enumerate(segments)
            if i + 1 >= len(segments) or segments[i + 1][0] - 1 > anchor.seq
        ]
        notes.append(f"segments up to seq {anchor.seq} were pruned (anchor.json)")
        segments = kept
    start = (anchor.seq + 1, anchor.hash) if anchor else (1, GENESIS)
    report = _verify_segments([p for _first, p in segments], start=start, wanted=wanted)
    report.notes[:0] = notes
    report.base = anchor or ORIGIN
    if not segments and anchor:
        report.head_seq, report.head_hash = anchor.seq, anchor.hash
    return report


def _verify_segments(
    paths: list[Path], start: tuple[int, str] | None, wanted: Collection[int]
) -> Report:
    """`start` is the expected (seq, prev) of the first record; None trusts the first
    record's own unless it is seq 1 (a single segment checked on its own)."""
    report = Report(segments=len(paths))
    expected = start
    for index, path in enumerate(paths):
        for number, raw, complete in read_lines(path):
            where = f"{path.name} line {number}"
            if not complete:
                if index == len(paths) - 1:
                    report.notes.append(f"{where}: incomplete last line ignored (being written?)")
                    break
                report.problem = f"{where}: incomplete line in the middle of the log"
                return report
            try:
                record = parse_record(raw)
            except BadRecord as e:
                seq = f" (expected seq {expected[0]})" if expected else ""
                report.problem = f"{where}{seq}: {e}"
                return report
            if expected is None:
                expected = (1, GENESIS) if record.seq == 1 else (record.seq, record.prev)
            error = link_error(record, *expected)
            if error:
                report.problem = f"{where} (seq {record.seq}): {error}"
                return report
            if report.first_seq is None:
                report.first_seq = record.seq
            report.records += 1
            if record.seq in wanted:
                report.hashes[record.seq] = record.hash
            report.head_seq, report.head_hash = record.seq, record.hash
            expected = (record.seq + 1, record.hash)
    return report
