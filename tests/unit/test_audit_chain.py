"""The hash-chained log: appending, rotation, pruning, recovery, and verify naming the first
broken record for every kind of tampering."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from services.audit import segments
from services.audit.chain import GENESIS, canonical_json, parse_record
from services.audit.segments import AuditLog, LogCorrupt, list_segments, read_anchor
from services.audit.verify import verify
from tests.support.audit import make_event, new_job_id

NOW = "2025-01-01T12:00:00.000000+00:00"


def write(log: AuditLog, count: int) -> None:
    job_id = new_job_id()
    entries = [
        ("events", make_event("job.started", job_id, attempt=i + 1).model_dump(mode="json"))
        for i in range(count)
    ]
    log.append(entries, NOW)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "log"


@pytest.fixture
def five(log_dir: Path) -> Path:
    """A log of five records in one segment; returns the segment's path."""
    log = AuditLog(log_dir, 1_000_000)
    write(log, 5)
    log.close()
    return list_segments(log_dir)[0][1]


def test_canonical_json_sorts_keys_and_has_no_spaces() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == b'{"a":[1,"\\u00e9"],"b":1}'


def test_records_chain_from_genesis_and_verify(log_dir: Path, five: Path) -> None:
    records = [parse_record(raw.rstrip(b"\n")) for raw in lines(five)]

    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev == GENESIS
    assert all(b.prev == a.hash for a, b in itertools.pairwise(records))
    report = verify(log_dir)
    assert report.ok, report.problem
    assert (report.records, report.head_seq, report.head_hash) == (5, 5, records[-1].hash)


def test_a_changed_byte_is_named_at_its_record(log_dir: Path, five: Path) -> None:
    content = bytearray(five.read_bytes())
    third = sum(len(line) for line in lines(five)[:2])
    at = content.index(b'"attempt":3', third)
    content[at + len('"attempt":')] = ord("7")
    five.write_bytes(bytes(content))

    report = verify(log_dir)
    assert not report.ok
    assert report.problem.startswith(f"{five.name} line 3 (expected seq 3): its hash")


def test_a_changed_byte_that_breaks_the_json_is_named_too(log_dir: Path, five: Path) -> None:
    content = bytearray(five.read_bytes())
    content[sum(len(line) for line in lines(five)[:3])] = ord("[")
    five.write_bytes(bytes(content))

    assert verify(log_dir).problem == f"{five.name} line 4 (expected seq 4): not valid JSON"


def test_a_removed_line_is_named_where_the_chain_breaks(log_dir: Path, five: Path) -> None:
    kept = lines(five)
    del kept[1]
    five.write_bytes(b"".join(kept))

    problem = verify(log_dir).problem
    assert problem is not None
    assert problem.startswith(f"{five.name} line 2 (seq 3): seq 3 where 2 was expected")


def test_two_swapped_lines_are_named_at_the_first_of_them(log_dir: Path, five: Path) -> None:
    kept = lines(five)
    kept[2], kept[3] = kept[3], kept[2]
    five.write_bytes(b"".join(kept))

    problem = verify(log_dir).problem
    assert problem is not None
    assert problem.startswith(f"{five.name} line 3 (seq 4): seq 4 where 3 was expected")


def test_records_cut_off_the_end_are_caught_by_the_recorded_head(log_dir: Path, five: Path) -> None:
    five.write_bytes(b"".join(lines(five)[:3]))

    assert verify(log_dir).ok  # the chain alone cannot tell
    problem = verify(log_dir, recorded_head=5).problem
    assert problem is not None and "ends at seq 3" in problem


def test_a_rewritten_chain_with_a_changed_prev_is_caught(log_dir: Path, five: Path) -> None:
    content = lines(five)
    first = parse_record(content[0].rstrip(b"\n"))
    content[0] = content[0].replace(first.prev.encode(), b"1" * 64)
    five.write_bytes(b"".join(content))

    problem = verify(log_dir).problem
    assert problem is not None and "line 1" in problem and "hash" in problem


def test_the_log_reopens_where_it_ended_and_drops_a_torn_last_line(
    log_dir: Path, five: Path
) -> None:
    with five.open("ab") as f:
        f.write(b'{"seq":6,"prev":"abc')  # a crash in the middle of a write

    log = AuditLog(log_dir, 1_000_000)
    assert log.head_seq == 5
    write(log, 2)
    log.close()
    report = verify(log_dir)
    assert report.ok, report.problem
    assert report.head_seq == 7


def test_a_broken_last_record_refuses_to_open(log_dir: Path, five: Path) -> None:
    content = lines(five)
    content[-1] = content[-1].replace(b'"attempt":5', b'"attempt":6')
    five.write_bytes(b"".join(content))

    with pytest.raises(LogCorrupt, match="last record"):
        AuditLog(log_dir, 1_000_000)


def test_segments_rotate_by_size_and_the_chain_runs_across_them(log_dir: Path) -> None:
    log = AuditLog(log_dir, 1500)
    for _ in range(6):
        write(log, 2)
    log.close()

    found = list_segments(log_dir)
    assert len(found) >= 3
    assert all(path.stat().st_size <= 1500 for _first, path in found)
    second_first = parse_record(lines(found[1][1])[0].rstrip(b"\n"))
    last_of_first = parse_record(lines(found[0][1])[-1].rstrip(b"\n"))
    assert second_first.prev == last_of_first.hash
    assert found[1][0] == second_first.seq
    report = verify(log_dir)
    assert report.ok and report.records == 12 and report.segments == len(found)


def test_a_deleted_middle_segment_breaks_the_chain(log_dir: Path) -> None:
    log = AuditLog(log_dir, 1500)
    for _ in range(6):
        write(log, 2)
    log.close()
    found = list_segments(log_dir)
    found[1][1].unlink()

    problem = verify(log_dir).problem
    assert problem is not None and problem.startswith(f"{found[2][1].name} line 1")


def test_pruning_keeps_an_anchor_so_the_rest_still_verifies(log_dir: Path) -> None:
    log = AuditLog(log_dir, 1500)
    for _ in range(6):
        write(log, 2)
    found = list_segments(log_dir)
    old = found[0][1].stat().st_mtime - 10_000
    for _first, path in found[:2]:
        os.utime(path, (old, old))

    pruned = log.prune(older_than=old + 1)
    assert pruned == [found[0][1].name, found[1][1].name]
    anchor = read_anchor(log_dir)
    assert anchor is not None and anchor.seq == found[2][0] - 1
    write(log, 1)
    log.close()
    report = verify(log_dir)
    assert report.ok, report.problem
    assert report.first_seq == found[2][0]
    assert AuditLog(log_dir, 1500).head_seq == 13


def test_pruning_never_removes_the_segment_being_written(log_dir: Path) -> None:
    log = AuditLog(log_dir, 1_000_000)
    write(log, 3)
    assert log.prune(older_than=10**12) == []
    assert len(list_segments(log_dir)) == 1


def test_a_failed_write_leaves_no_half_batch_behind(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(log_dir, 1_000_000)
    write(log, 2)

    def disk_full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(segments.os, "fsync", disk_full)
        with pytest.raises(OSError):
            write(log, 3)
    assert log.head_seq == 2
    write(log, 1)
    log.close()
    report = verify(log_dir)
    assert report.ok and report.head_seq == 3


def test_a_single_segment_can_be_checked_on_its_own(log_dir: Path) -> None:
    log = AuditLog(log_dir, 1500)
    for _ in range(4):
        write(log, 2)
    log.close()
    _first, second = list_segments(log_dir)[1]

    report = verify(second)
    assert report.ok and report.segments == 1 and report.records > 0
