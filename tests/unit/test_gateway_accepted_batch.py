"""The gateway's records of jobs accepted on the event loop: those of one turn go into the
ledger together, each request returning once its own job is there."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.gateway.accepted_batch import AcceptedBatch
from shared.config import Settings
from shared.errors import StateError
from shared.state import SUBMISSIONS_FILE, AcceptedJob, SubmissionLedger, open_submissions

NOW = datetime.now(UTC)


class Watched:
    """A real ledger whose accepted_jobs calls are kept, and which can be made to fail."""

    def __init__(self, ledger: SubmissionLedger) -> None:
        self.ledger = ledger
        self.calls: list[list[str]] = []
        self.failure: StateError | None = None

    def accepted_jobs(self, jobs: Sequence[AcceptedJob]) -> None:
        self.calls.append([j.id for j in jobs])
        if self.failure is not None:
            raise self.failure
        self.ledger.accepted_jobs(jobs)

    def accepted_jobs_at_once(self, jobs: Sequence[AcceptedJob]) -> bool:
        """Written on the loop, as the ledger's own would while no other writer holds it."""
        self.accepted_jobs(jobs)
        return True


def job(job_id: str) -> AcceptedJob:
    return AcceptedJob(job_id, "render", NOW, "alice")


@pytest.fixture
def watched(state_settings: Settings) -> Watched:
    return Watched(open_submissions(state_settings))


def test_the_jobs_of_one_turn_are_written_together_and_each_found_on_return(
    watched: Watched,
) -> None:
    batch = AcceptedBatch(watched)  # type: ignore[arg-type]

    async def one(job_id: str) -> bool:
        await batch.record(job(job_id))
        return watched.ledger.find(job_id) == job(job_id)  # there as it returns

    async def main() -> list[bool]:
        together = await asyncio.gather(*(one(f"j{i}") for i in range(5)))
        later = await one("j5")
        return [*together, later]

    assert asyncio.run(main()) == [True] * 6
    assert watched.calls == [["j0", "j1", "j2", "j3", "j4"], ["j5"]]


def test_a_failed_write_is_each_waiters_error_and_a_cancelled_one_is_left_out(
    watched: Watched,
) -> None:
    batch = AcceptedBatch(watched)  # type: ignore[arg-type]
    watched.failure = StateError("cannot record accepted jobs: database or disk is full")

    async def main() -> list[BaseException | None]:
        tasks = [asyncio.ensure_future(batch.record(job(f"j{i}"))) for i in range(3)]
        await asyncio.sleep(0)  # each has joined the turn's batch
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    loop = asyncio.new_event_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        first, cancelled, last = loop.run_until_complete(main())
    finally:
        loop.close()
    assert isinstance(first, StateError) and isinstance(last, StateError)
    assert isinstance(cancelled, asyncio.CancelledError)
    assert watched.calls == [["j0", "j1", "j2"]]  # the cancelled one's job went out: recorded
    assert unhandled == []  # no "exception was never retrieved"
    watched.failure = None
    asyncio.run(batch.record(job("j3")))  # the next turn writes again
    assert watched.ledger.find("j3") is not None


def test_a_turn_whose_loop_ended_before_its_write_holds_up_no_other_loop(
    watched: Watched,
) -> None:
    batch = AcceptedBatch(watched)  # type: ignore[arg-type]
    first = asyncio.new_event_loop()
    started: list[asyncio.Future[None]] = []

    async def begin_then_stop() -> None:
        started.append(asyncio.ensure_future(batch.record(job("j0"))))
        await asyncio.sleep(0)  # its write is due in the next turn, which never comes
        first.stop()

    try:
        first.run_until_complete(begin_then_stop())
    finally:
        first.close()
    assert watched.calls == [] and not started[0].done()
    started[0]._log_destroy_pending = False  # type: ignore[attr-defined]  # it is, on purpose
    asyncio.run(asyncio.wait_for(batch.record(job("j1")), 5))
    assert watched.calls == [["j1"]] and watched.ledger.find("j1") is not None


def test_an_interruption_in_the_write_is_raised_and_its_waiters_still_answered(
    watched: Watched,
) -> None:
    batch = AcceptedBatch(watched)  # type: ignore[arg-type]
    interrupted = [True]
    real = watched.accepted_jobs

    def accepted_jobs(jobs: Sequence[AcceptedJob]) -> None:
        if interrupted.pop():
            raise KeyboardInterrupt
        real(jobs)

    watched.accepted_jobs = accepted_jobs  # type: ignore[method-assign]

    async def both() -> list[BaseException | None]:
        return await asyncio.gather(
            *(batch.record(job(f"j{i}")) for i in range(2)), return_exceptions=True
        )

    loop = asyncio.new_event_loop()
    try:
        waiters = loop.create_task(both())
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(waiters)
        results = loop.run_until_complete(waiters)
    finally:
        loop.close()
    assert [type(r) for r in results] == [StateError, StateError]
    assert "KeyboardInterrupt" in str(results[0])


class Held(Watched):
    """A Watched ledger whose writes wait until `go` is set (a server slow to commit)."""

    def __init__(self, ledger: SubmissionLedger) -> None:
        super().__init__(ledger)
        self.go = threading.Event()
        self.began = threading.Event()

    def accepted_jobs(self, jobs: Sequence[AcceptedJob]) -> None:
        self.began.set()
        assert self.go.wait(10), "the test never let the write go on"
        super().accepted_jobs(jobs)


def test_off_the_loop_a_slow_write_holds_up_no_request_and_later_turns_go_together(
    watched: Watched,
) -> None:
    """A ledger whose writes wait on a server: the loop goes on while one is under way, and
    the jobs of the turns that come meanwhile go together into the next write."""
    held = Held(watched.ledger)
    batch = AcceptedBatch(held, off_loop=True)  # type: ignore[arg-type]
    turns_served = 0

    async def one(job_id: str) -> bool:
        await batch.record(job(job_id))
        return held.ledger.find(job_id) == job(job_id)  # there as it returns

    async def main() -> list[bool]:
        nonlocal turns_served
        first = asyncio.ensure_future(one("j0"))
        while not held.began.is_set():
            await asyncio.sleep(0.001)
        later = []
        for i in range(1, 4):  # each in a turn of its own, while j0's write waits
            later.append(asyncio.ensure_future(one(f"j{i}")))
            await asyncio.sleep(0)
            turns_served += 1
        assert not first.done() and held.calls == [], "nothing written before the server said"
        held.go.set()
        return list(await asyncio.gather(first, *later))

    assert asyncio.run(asyncio.wait_for(main(), 20)) == [True] * 4
    assert turns_served == 3
    assert held.calls == [["j0"], ["j1", "j2", "j3"]]


def test_off_the_loop_a_failed_or_interrupted_write_is_each_waiters_error(
    watched: Watched,
) -> None:
    batch = AcceptedBatch(watched, off_loop=True)  # type: ignore[arg-type]
    watched.failure = StateError("cannot record accepted jobs: the server is gone")

    async def two() -> list[BaseException | None]:
        return await asyncio.gather(
            *(batch.record(job(f"j{i}")) for i in range(2)), return_exceptions=True
        )

    failed = asyncio.run(two())
    assert [str(e) for e in failed] == ["cannot record accepted jobs: the server is gone"] * 2
    watched.failure = None
    real = watched.accepted_jobs

    def interrupted(jobs: Sequence[AcceptedJob]) -> None:
        watched.accepted_jobs = real  # type: ignore[method-assign]  # once
        raise KeyboardInterrupt

    watched.accepted_jobs = interrupted  # type: ignore[method-assign]
    results = asyncio.run(two())
    assert [type(r) for r in results] == [StateError, StateError]
    assert "KeyboardInterrupt" in str(results[0])
    asyncio.run(batch.record(job("j9")))  # the next write goes on
    assert watched.ledger.find("j9") is not None


def test_off_the_loop_no_thread_for_the_write_is_each_waiters_error_not_a_hang(
    watched: Watched,
) -> None:
    batch = AcceptedBatch(watched, off_loop=True)  # type: ignore[arg-type]
    batch._writer.shutdown()  # as when no thread can be started

    async def two() -> list[BaseException | None]:
        return await asyncio.gather(
            *(batch.record(job(f"j{i}")) for i in range(2)), return_exceptions=True
        )

    for _ in range(2):  # and the next ones too: nothing is left waiting for a write
        failed = asyncio.run(asyncio.wait_for(two(), 5))
        assert [type(e) for e in failed] == [StateError, StateError]
    assert watched.calls == []


def test_off_the_loop_two_loops_each_have_every_turn_written(watched: Watched) -> None:
    """Loop A's write under way with a turn waiting behind it, loop B's turn comes: each
    loop's turns are its own, none is left behind."""
    held = Held(watched.ledger)
    batch = AcceptedBatch(held, off_loop=True)  # type: ignore[arg-type]
    a_waits_behind = threading.Event()
    outcomes: dict[str, list[BaseException | None]] = {}

    async def on_a() -> list[BaseException | None]:
        first = asyncio.ensure_future(batch.record(job("a0")))
        while not held.began.is_set():
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(batch.record(job("a1")))
        await asyncio.sleep(0)
        a_waits_behind.set()
        return await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 10)

    def run(name: str, main: Callable[[], Coroutine[Any, Any, list[BaseException | None]]]) -> None:
        outcomes[name] = asyncio.run(main())

    a = threading.Thread(target=run, args=("a", on_a))
    a.start()
    assert a_waits_behind.wait(10)

    async def on_b() -> list[BaseException | None]:
        return [await asyncio.wait_for(batch.record(job("b0")), 10)]

    b = threading.Thread(target=run, args=("b", on_b))
    b.start()
    time.sleep(0.2)  # b0's turn is due on its loop meanwhile
    held.go.set()
    a.join(15)
    b.join(15)
    assert outcomes == {"a": [None, None], "b": [None]}
    assert sorted(held.calls) == [["a0"], ["a1"], ["b0"]]


_HUNG_WRITE = """
import asyncio, threading
from datetime import UTC, datetime
from services.gateway.accepted_batch import AcceptedBatch
from shared.state import AcceptedJob

class Hung:
    def accepted_jobs(self, jobs):
        print("writing", flush=True)
        threading.Event().wait()  # a write on a dead path: never returns

async def main():
    batch = AcceptedBatch(Hung(), off_loop=True)
    job = AcceptedJob("j1", "render", datetime.now(UTC), "alice")
    try:
        await asyncio.wait_for(batch.record(job), 0.5)
    except TimeoutError:
        print("gave up", flush=True)

asyncio.run(main())
"""


def test_off_the_loop_a_write_hung_on_a_dead_path_holds_up_no_exit() -> None:
    """The process ends though its write never returns (a thread pool's thread would be
    joined at exit, for good)."""
    done = subprocess.run(
        [sys.executable, "-c", _HUNG_WRITE],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["writing", "gave", "up"]


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection (as another gateway process's) holding the file's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_local_ledger_held_by_another_writer_is_written_from_the_thread_and_the_loop_serves(
    tmp_path: Path,
) -> None:
    """SQLite held by another writer: the write goes to the thread, where it waits for the
    lock; the loop serves on meanwhile, and the request returns once its job is there."""
    settings = Settings(state_dir=tmp_path / "state")
    ledger = open_submissions(settings)
    batch = AcceptedBatch(ledger)
    other = _hold_write_lock(settings.state_dir / SUBMISSIONS_FILE)
    turns_while_held = 0

    async def main() -> bool:
        nonlocal turns_while_held
        recorded = asyncio.ensure_future(batch.record(job("j0")))
        began = time.monotonic()
        for _ in range(20):  # the loop goes on: no busy handler sleeping on it
            await asyncio.sleep(0.01)
            turns_while_held += 1
        # Not a speed check: a busy wait on the loop would hold it for seconds (5 s here).
        assert time.monotonic() - began < 2, "the loop waited for the lock"
        assert not recorded.done(), "written past another writer's lock"
        other.execute("COMMIT")
        await asyncio.wait_for(recorded, 10)
        return ledger.find("j0") == job("j0")

    try:
        assert asyncio.run(main())
    finally:
        other.close()
        ledger.close()
    assert turns_while_held == 20


class Paths:
    """A real SQLite ledger that tells which way each write went."""

    def __init__(self, ledger: SubmissionLedger) -> None:
        self.ledger = ledger
        self.ways: list[tuple[str, list[str]]] = []

    def accepted_jobs_at_once(self, jobs: Sequence[AcceptedJob]) -> bool:
        written = self.ledger.accepted_jobs_at_once(jobs)
        self.ways.append(("at once" if written else "held", [j.id for j in jobs]))
        return written

    def accepted_jobs(self, jobs: Sequence[AcceptedJob]) -> None:
        self.ledger.accepted_jobs(jobs)
        self.ways.append(("thread", [j.id for j in jobs]))


def test_the_turns_behind_a_held_write_go_together_then_on_the_loop_again(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    paths = Paths(open_submissions(settings))
    batch = AcceptedBatch(paths)  # type: ignore[arg-type]
    other = _hold_write_lock(settings.state_dir / SUBMISSIONS_FILE)

    async def main() -> None:
        first = asyncio.ensure_future(batch.record(job("j0")))
        await asyncio.sleep(0.05)  # j0's write went to the thread, waiting for the lock
        later = []
        for i in (1, 2):  # each in a turn of its own
            later.append(asyncio.ensure_future(batch.record(job(f"j{i}"))))
            await asyncio.sleep(0)
        other.execute("COMMIT")
        await asyncio.wait_for(asyncio.gather(first, *later), 10)
        await batch.record(job("j3"))

    try:
        asyncio.run(main())
        assert [paths.ledger.find(f"j{i}") for i in range(4)] == [job(f"j{i}") for i in range(4)]
    finally:
        other.close()
        paths.ledger.close()
    assert paths.ways == [
        ("held", ["j0"]),
        ("thread", ["j0"]),
        ("at once", ["j1", "j2"]),  # the turns that came meanwhile, together
        ("at once", ["j3"]),
    ]


def test_a_local_ledger_writes_at_once_only_when_no_one_holds_it(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    ledger = open_submissions(settings)
    path = settings.state_dir / SUBMISSIONS_FILE
    try:
        other = _hold_write_lock(path)
        try:
            assert ledger.accepted_jobs_at_once([job("j0")]) is False
        finally:
            other.execute("COMMIT")
            other.close()
        assert ledger.find("j0") is None  # nothing written
        assert ledger.accepted_jobs_at_once([job("j1"), job("j2")]) is True
        assert [ledger.find(i) for i in ("j1", "j2")] == [job("j1"), job("j2")]
        # A request thread on the one connection: not waited for either.
        with ledger._lock:  # type: ignore[attr-defined]
            assert ledger.accepted_jobs_at_once([job("j3")]) is False
        assert ledger.find("j3") is None
    finally:
        ledger.close()


def test_a_local_ledger_still_waits_for_another_writer_after_a_write_at_once(
    tmp_path: Path,
) -> None:
    """The busy handler is off for the attempt at once only: a write from the thread (or a
    reservation) waits for the lock as before, rather than failing at once."""
    settings = Settings(state_dir=tmp_path / "state")
    ledger = open_submissions(settings)
    other = _hold_write_lock(settings.state_dir / SUBMISSIONS_FILE)
    assert ledger.accepted_jobs_at_once([job("j0")]) is False
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            ledger.accepted_jobs([job("j1")])
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        writer.join(0.3)
        assert writer.is_alive() and outcome == [], "it did not wait for the lock"
    finally:
        other.execute("COMMIT")
        other.close()
    writer.join(10)
    try:
        assert outcome == [None] and ledger.find("j1") == job("j1")
    finally:
        ledger.close()


def test_the_postgres_ledger_never_writes_on_the_loop(postgres_url: str) -> None:
    ledger = open_submissions(Settings(state_url=postgres_url))
    try:
        assert ledger.accepted_jobs_at_once([job("j0")]) is False
        assert ledger.find("j0") is None
    finally:
        ledger.close()
