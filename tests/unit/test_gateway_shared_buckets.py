"""The submission-rate table GATEWAY_WORKERS share: the same answers as one process's buckets,
one budget across processes, a dead holder of the lock stopping no one, and a full table."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import random
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.gateway.ratelimit import LocalBuckets, take_token
from services.gateway.shared_buckets import SLOT, SharedBuckets, make_table


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "rates"
    make_table(path)
    return path


def test_the_table_answers_as_one_processs_buckets(table: Path) -> None:
    shared, local = SharedBuckets(table), LocalBuckets()
    rng = random.Random(7)
    now = 1000.0
    for _ in range(3000):
        now += rng.choice([0.0, 0.0, 0.01, 0.1, 0.5, 3.0])
        name = rng.choice(["alice", "bob", "carol", "dave"])
        rate, burst = {"alice": (1.0, 3), "bob": (0.5, 1), "carol": (20.0, 40), "dave": (2.0, 2)}[
            name
        ]
        assert shared.take(name, rate, burst, now) == pytest.approx(
            local.take(name, rate, burst, now)
        )
    shared.close()


def test_a_new_key_starts_with_a_full_bucket_and_waits_for_its_next_token(table: Path) -> None:
    buckets = SharedBuckets(table)
    assert [buckets.take("k", 2.0, 3, 50.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", 2.0, 3, 50.0) == pytest.approx(0.5)
    assert buckets.take("k", 2.0, 3, 50.5) == 0.0
    buckets.close()


def test_a_time_read_before_the_last_update_refills_nothing() -> None:
    # Another process counted the bucket at 10.0; this one read the clock at 9.0 before its turn.
    assert take_token(0.5, 10.0, 1.0, 5, 9.0) == (0.5, 10.0, pytest.approx(0.5))
    assert take_token(0.5, 10.0, 1.0, 5, 10.5) == (0.0, 10.5, 0.0)


def _take_many(path: str, takes: int, start: Any, results: Any) -> None:
    buckets = SharedBuckets(Path(path))
    start.wait(60)  # all at once, so their updates overlap
    results.put(sum(buckets.take("shared-key", 1e-6, 5000, 5.0) == 0.0 for _ in range(takes)))


def test_processes_share_one_budget(table: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Barrier(3)
    args = (str(table), 4000, start, results)
    workers = [context.Process(target=_take_many, args=args) for _ in range(3)]
    for worker in workers:
        worker.start()
    granted = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    # The burst, once, not once per process; and no token lost or taken twice in a race.
    assert sum(granted) == 5000


def test_a_process_that_died_holding_the_lock_stops_no_one(table: Path) -> None:
    pid = os.fork()
    if pid == 0:
        fd = os.open(table, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os._exit(0)  # dies with the lock held, never releasing it itself
    os.waitpid(pid, 0)
    buckets = SharedBuckets(table)
    assert buckets.take("k", 1.0, 1, 1.0) == 0.0
    buckets.close()


def test_a_full_table_limits_new_keys_per_process_and_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "small"
    make_table(path, slots=2)
    buckets = SharedBuckets(path)
    with capture_logs() as logs:
        assert buckets.take("a", 1.0, 1, 0.0) == 0.0
        assert buckets.take("b", 1.0, 1, 0.0) == 0.0
        # A third key finds no slot: a bucket of this process's, as limited as the others.
        assert buckets.take("c", 1.0, 1, 0.0) == 0.0
        assert buckets.take("c", 1.0, 1, 0.0) == pytest.approx(1.0)
        assert buckets.take("d", 1.0, 1, 0.0) == 0.0
        # The keys in the table keep theirs.
        assert buckets.take("a", 1.0, 1, 0.0) == pytest.approx(1.0)
    assert [entry["event"] for entry in logs] == ["rate_table_full"]
    buckets.close()


@pytest.mark.parametrize("size", [0, SLOT.size * 3 + 1])
def test_a_file_that_is_no_table_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "not-a-table"
    path.write_bytes(b"\0" * size)
    with pytest.raises(ValueError, match="is not a bucket table"):
        SharedBuckets(path)
