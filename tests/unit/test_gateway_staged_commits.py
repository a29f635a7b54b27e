"""The flush of uploads staged on the gateway's event loop: those of one turn go to one thread
together, each request returning once its own upload is stored; a cancelled request leaves
nothing behind and never races the thread for its staged file."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.gateway import staged_commits
from services.gateway.staged_commits import StagedCommits
from shared.blobs import FolderBlobStore, input_key
from shared.errors import BlobError
from shared.files import StagedFile


class Flushes:
    """StagedFile.commit, watched: which thread flushed which file, and a gate to hold it."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.failing: set[int] = set()  # the n-th flushes (from 0) that fail with EIO


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> Flushes:
    watched = Flushes()
    real = StagedFile.commit

    def commit(staged: StagedFile) -> None:
        n = len(watched.threads)
        watched.threads.append(threading.get_ident())
        watched.started.set()
        assert watched.gate.wait(10), "the test never let the flush go on"
        if n in watched.failing:
            staged.discard()
            raise OSError(errno.EIO, "Input/output error")
        real(staged)

    monkeypatch.setattr(StagedFile, "commit", commit)
    return watched


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


@pytest.fixture
def temp_files(tmp_path: Path) -> Iterator[None]:
    yield
    assert not list((tmp_path / "blobs").rglob(".tmp-*")), "no temp file left"


@pytest.fixture
def descriptors() -> Iterator[None]:
    opened = len(os.listdir("/proc/self/fd"))
    yield
    assert len(os.listdir("/proc/self/fd")) <= opened, "every staged file's descriptors closed"


def stage(store: FolderBlobStore, name: str) -> StagedFile:
    staged = store.stage_bytes(input_key(name, "input.png"), name.encode())
    assert isinstance(staged, StagedFile)
    return staged


def stored(store: FolderBlobStore, name: str) -> bytes | None:
    key = input_key(name, "input.png")
    return store.read_bytes(key) if store.exists(key) else None


def test_the_uploads_of_one_turn_are_flushed_by_one_thread_each_there_on_return(
    store: FolderBlobStore, flushes: Flushes, descriptors: None, temp_files: None
) -> None:
    commits = StagedCommits()

    async def one(name: str) -> bool:
        await commits.commit(stage(store, name))
        return stored(store, name) == name.encode()  # there as it returns

    async def main() -> list[bool]:
        together = await asyncio.gather(*(one(f"j{i}") for i in range(5)))
        return [*together, await one("j5")]

    assert asyncio.run(main()) == [True] * 6
    assert len(flushes.threads) == 6
    assert len(set(flushes.threads[:5])) == 1, "one turn's uploads, one thread"
    assert threading.get_ident() not in flushes.threads, "never on the event loop"


def test_a_failed_flush_is_its_own_request_s_error_and_the_others_are_stored(
    store: FolderBlobStore, flushes: Flushes, descriptors: None, temp_files: None
) -> None:
    commits = StagedCommits()
    flushes.failing = {1}

    async def main() -> list[object]:
        names = ["a", "b", "c"]
        staged = [stage(store, n) for n in names]
        return await asyncio.gather(*(commits.commit(s) for s in staged), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], OSError) and outcomes[1].errno == errno.EIO
    assert [stored(store, n) for n in "abc"] == [b"a", None, b"c"]


def test_a_request_cancelled_before_its_flush_is_handed_over_is_not_flushed(
    store: FolderBlobStore,
    flushes: Flushes,
    descriptors: None,
    temp_files: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cancellation comes after the turn's hand-over in asyncio's order of callbacks; this
    holds the hand-over back a while, so that one comes first."""
    commits = StagedCommits()
    hand = StagedCommits._hand
    held: list[bool] = []

    def held_back(self: StagedCommits, batch: Any) -> None:
        if not held:
            held.append(True)
            asyncio.get_running_loop().call_later(0.05, hand, self, batch)
        else:
            hand(self, batch)

    monkeypatch.setattr(StagedCommits, "_hand", held_back)

    async def main() -> None:
        staged = stage(store, "gone")
        task = asyncio.create_task(commits.commit(staged))
        await asyncio.sleep(0.01)  # it has joined the turn's batch, not yet handed over
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        staged.discard()  # what the route does next: no thread holds it
        await commits.commit(stage(store, "kept"))

    asyncio.run(main())
    assert len(flushes.threads) == 1, "only the upload still wanted was flushed"
    assert stored(store, "gone") is None and stored(store, "kept") == b"kept"


def test_a_request_cancelled_during_its_flush_waits_for_the_thread_to_be_done_with_it(
    store: FolderBlobStore, flushes: Flushes, descriptors: None, temp_files: None
) -> None:
    """Cancelled (the server's stop) while a thread flushes its upload, the request goes on
    only once the flush ended: its clean-up then never closes descriptors the thread uses."""
    commits = StagedCommits()
    flushes.gate.clear()
    ended: list[bool] = []

    async def main() -> None:
        staged = stage(store, "held")
        task = asyncio.create_task(commits.commit(staged))
        while not flushes.started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.05)
        ended.append(task.done())
        task.cancel()  # a second cancellation does not cut the wait short either
        await asyncio.sleep(0.05)
        ended.append(task.done())
        flushes.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        staged.discard()  # as the route does: a no-op after a whole flush

    asyncio.run(main())
    assert ended == [False, False], "the request waited for its flush"
    assert stored(store, "held") == b"held"  # the route then removes the blob (its own test)


def test_with_no_thread_to_be_had_the_upload_is_refused_and_nothing_kept(
    store: FolderBlobStore,
    monkeypatch: pytest.MonkeyPatch,
    descriptors: None,
    temp_files: None,
) -> None:
    def no_thread(*args: object, **kwargs: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(staged_commits.threading.Thread, "start", no_thread)

    async def main() -> None:
        with pytest.raises(BlobError, match="can't start new thread"):
            await StagedCommits().commit(stage(store, "none"))

    asyncio.run(main())
    assert stored(store, "none") is None


def test_a_refused_flush_is_answered_even_when_its_staged_file_cannot_be_dropped(
    store: FolderBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread(*args: object, **kwargs: object) -> None:
        raise RuntimeError("can't start new thread")

    def cannot_drop(staged: StagedFile) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(staged_commits.threading.Thread, "start", no_thread)
    staged = stage(store, "stuck")
    monkeypatch.setattr(StagedFile, "discard", cannot_drop)

    async def main() -> None:
        with pytest.raises(BlobError, match="can't start new thread"):
            await asyncio.wait_for(StagedCommits().commit(staged), 1)

    asyncio.run(main())
    monkeypatch.undo()
    staged.discard()


def test_a_request_cancelled_while_its_flush_waits_for_a_free_thread_goes_at_once(
    store: FolderBlobStore, flushes: Flushes, descriptors: None, temp_files: None
) -> None:
    """With every thread busy (a stuck disk), a queued flush is still the request's: a
    cancellation (the server's stop) ends it at once, and it is never flushed."""
    commits = StagedCommits(threads=1)
    flushes.gate.clear()

    async def main() -> None:
        first = asyncio.create_task(commits.commit(stage(store, "busy")))
        while not flushes.started.is_set():
            await asyncio.sleep(0.001)
        queued = stage(store, "queued")
        task = asyncio.create_task(commits.commit(queued))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        queued.discard()
        flushes.gate.set()
        await first

    asyncio.run(main())
    assert len(flushes.threads) == 1, "the withdrawn upload was not flushed"
    assert stored(store, "busy") == b"busy" and stored(store, "queued") is None


def test_at_most_threads_batches_are_flushed_at_once(
    store: FolderBlobStore, flushes: Flushes, descriptors: None, temp_files: None
) -> None:
    """Each turn's batch gets a thread of its own while fewer than THREADS are busy, so a
    slow disk still has flushes in parallel; beyond that a batch waits for a free one."""
    commits = StagedCommits(threads=2)
    flushes.gate.clear()

    async def main() -> None:
        tasks = []
        for name in ("t1", "t2", "t3"):  # three turns
            tasks.append(asyncio.create_task(commits.commit(stage(store, name))))
            await asyncio.sleep(0.02)
        assert len(flushes.threads) == 2, "two batches under way, the third waits"
        flushes.gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert len(set(flushes.threads)) == 2
    assert [stored(store, n) for n in ("t1", "t2", "t3")] == [b"t1", b"t2", b"t3"]


def test_another_store_s_staged_blob_is_committed_in_a_thread_of_its_own() -> None:
    """An S3 store's PUT is a network round trip: it is not queued behind other uploads."""
    threads: list[int] = []

    class StagedPut:
        def commit(self) -> None:
            threads.append(threading.get_ident())

        def discard(self) -> None:
            raise AssertionError("not discarded")

    async def main() -> None:
        await StagedCommits().commit(StagedPut())

    asyncio.run(main())
    assert len(threads) == 1 and threads[0] != threading.get_ident()
