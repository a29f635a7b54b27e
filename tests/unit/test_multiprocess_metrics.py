"""Metrics several processes count and one serves: the sum of every process's file, and a
file another process is making at that moment (still empty) breaks neither the start of a
process nor a scrape."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from shared.multiprocess_metrics import collected_from

_HELP = "Jobs accepted."


def _count(folder: Path, pid: int, value: float) -> None:
    """What prometheus_client writes for a counter `jobs_total` of process `pid`."""
    values = MmapedDict(str(folder / f"counter_{pid}.db"))
    try:
        values.write_value(mmap_key("jobs", "jobs_total", [], [], _HELP), value, 0.0)
    finally:
        values.close()


def test_the_exposition_sums_every_processs_counts(tmp_path: Path) -> None:
    _count(tmp_path, 101, 3)
    _count(tmp_path, 102, 4)
    assert "jobs_total 7.0" in generate_latest(collected_from(tmp_path)).decode()


def test_a_file_being_made_by_another_process_is_skipped(tmp_path: Path) -> None:
    _count(tmp_path, 101, 3)
    (tmp_path / "counter_102.db").touch()  # opened, not yet sized
    registry = collected_from(tmp_path)  # registering collects once
    assert "jobs_total 3.0" in generate_latest(registry).decode()
