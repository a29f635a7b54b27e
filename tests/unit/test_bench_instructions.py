"""The callgrind section's reading of valgrind's output and its per-job arithmetic."""

from __future__ import annotations

import pytest

from benchmarks.instructions import SIZES, _per_job, collected, under_callgrind


def test_the_count_is_the_last_collected_line() -> None:
    stderr = (
        "==12== Callgrind, a call-graph generating cache profiler\n==12== Collected : 1841675162\n"
    )
    assert collected(stderr) == 1841675162


def test_no_count_is_an_error_that_shows_the_output() -> None:
    with pytest.raises(RuntimeError, match="valgrind: command not found"):
        collected("valgrind: command not found")


def test_start_up_cancels_out_of_the_per_job_figure() -> None:
    start_up, per_job = 1_700_000_000, 21_160_000
    small, large = (start_up + n * per_job for n in SIZES)
    assert _per_job(large, small) == pytest.approx(21.16)


def test_the_command_runs_under_callgrind_without_a_profile_file() -> None:
    command = under_callgrind(["python", "-m", "x"])
    assert command[:3] == ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    assert command[3:] == ["python", "-m", "x"]
