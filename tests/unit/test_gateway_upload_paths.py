"""Both ways an upload reaches the blob store: one the form parser kept in memory (up to
1 MiB) is staged on the event loop and only flushed in a thread; a larger one is written wholly
in a thread. Each stores exactly the bytes sent, and on every failure (a full disk, a flush
that fails after the rename, the broker refusing the job, the form's file failing to be read
again for a key's hash) answers 503 and keeps nothing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import io
import json
import os
import random
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.gateway import uploads
from services.gateway.publisher import Outgoing
from services.gateway.staged_commits import StagedCommits
from services.gateway.submit_routes import STAGE_ON_THE_LOOP_BYTES
from shared.blobs import FolderBlobStore
from shared.blobs.store import StagedBlob
from shared.errors import PublishNacked, StateError
from shared.files import StagedFile
from shared.state.submissions import SqliteSubmissionLedger
from tests.support.full_disk import full_folder
from tests.support.gateway import in_process_gateway
from tests.unit.test_gateway_in_doubt import ScriptedPublisher


class LoopPublisher(ScriptedPublisher):
    """A publisher the gateway may await on its event loop (`publish_async`), as the real one."""

    async def publish_async(self, messages: Sequence[Outgoing]) -> None:
        self.publish(messages)


def _noise_png(side: int) -> bytes:
    """A PNG of random pixels: it does not compress, so its size follows `side`."""
    rng = random.Random(side)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    return out.getvalue()


SMALL = _noise_png(64)
LARGE = _noise_png(700)  # about 1.4 MiB: spooled to disk by the form parser


@pytest.fixture(params=["in memory", "spooled"])
def upload(request: pytest.FixtureRequest) -> bytes:
    data = SMALL if request.param == "in memory" else LARGE
    assert (len(data) <= STAGE_ON_THE_LOOP_BYTES) == (request.param == "in memory")
    return data


@pytest.fixture
def publisher() -> LoopPublisher:
    return LoopPublisher()


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys staged (on the event loop), to tell which way an upload went."""
    keys: list[str] = []
    original = FolderBlobStore.stage_bytes

    def stage_bytes(self: FolderBlobStore, key: str, data: bytes) -> object:
        keys.append(key)
        return original(self, key, data)

    monkeypatch.setattr(FolderBlobStore, "stage_bytes", stage_bytes)
    return keys


@pytest.fixture
def http(publisher: LoopPublisher, tmp_path: Path, staged: list[str]) -> Iterator[TestClient]:
    with in_process_gateway(publisher, tmp_path / "blobs") as client:
        yield client


def _post(http: TestClient, data: bytes) -> httpx.Response:
    return http.post("/jobs/resize", files={"file": ("a.png", data)}, data={"width": "8"})


def _inputs(tmp_path: Path) -> list[Path]:
    """Every file in a job's input folder, temp files too (a full disk's filler is not)."""
    return [p for p in (tmp_path / "blobs" / "inputs").glob("*/*") if p.is_file()]


def test_an_upload_is_stored_exactly_as_sent(
    http: TestClient, publisher: LoopPublisher, tmp_path: Path, upload: bytes, staged: list[str]
) -> None:
    response = _post(http, upload)
    assert response.status_code == 202, response.text
    job = publisher.jobs[0]
    assert job["id"] == response.json()["id"]
    inputs = job["inputs"]
    assert isinstance(inputs, list) and len(inputs) == 1
    key = inputs[0]
    assert key == f"inputs/{job['id']}/input.png"
    assert (tmp_path / "blobs" / key).read_bytes() == upload
    assert staged == ([key] if upload is SMALL else [])
    assert not [p for p in (tmp_path / "blobs").rglob(".tmp-*")]


def test_an_upload_to_a_full_disk_keeps_nothing(
    http: TestClient, publisher: LoopPublisher, tmp_path: Path, upload: bytes
) -> None:
    with full_folder(tmp_path / "blobs" / "inputs") as refused:
        response = _post(http, upload)
        assert response.status_code == 503, response.text
        assert errno.errorcode[refused] in response.json()["detail"]
        assert _inputs(tmp_path) == []
    assert publisher.jobs == []
    assert _post(http, upload).status_code == 202


def test_a_flush_that_fails_after_the_rename_keeps_nothing(
    http: TestClient,
    publisher: LoopPublisher,
    tmp_path: Path,
    upload: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_fsync = os.fsync

    def folder_fsync_fails(fd: int) -> None:
        folder = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if stat.S_ISDIR(os.fstat(fd).st_mode) and folder.parent.name == "inputs":
            raise OSError(errno.EIO, "Input/output error")  # the job's folder, after the rename
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", folder_fsync_fails)
    response = _post(http, upload)
    assert response.status_code == 503, response.text
    assert "EIO" in response.json()["detail"]
    assert _inputs(tmp_path) == [] and publisher.jobs == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert _post(http, upload).status_code == 202


def test_a_job_the_broker_refuses_keeps_no_input(
    http: TestClient, publisher: LoopPublisher, tmp_path: Path, upload: bytes
) -> None:
    publisher.failures.append(PublishNacked("the queue is full"))
    response = _post(http, upload)
    assert response.status_code == 503, response.text
    assert _inputs(tmp_path) == []
    accepted = _post(http, upload)
    assert accepted.status_code == 202
    assert [json.dumps(j["inputs"]) for j in publisher.jobs[1:]] == [
        json.dumps([p.relative_to(tmp_path / "blobs").as_posix() for p in _inputs(tmp_path)])
    ]


@pytest.mark.parametrize("flushed", [False, True], ids=["before its flush", "after its flush"])
def test_an_upload_cancelled_around_its_flush_keeps_nothing(
    http: TestClient,
    publisher: LoopPublisher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flushed: bool,
) -> None:
    """The server's stop cancels a request waiting for a thread to flush its staged upload
    (or just as the flush returns): the temp file, its descriptors and the blob go, as no job
    will name them. Before, a `.tmp-*` stayed in `inputs/<id>/` for good."""
    opened = len(os.listdir("/proc/self/fd"))

    async def cancelled(_commits: StagedCommits, staged: StagedBlob) -> None:
        if flushed:
            staged.commit()
        raise asyncio.CancelledError

    monkeypatch.setattr(StagedCommits, "commit", cancelled)
    with pytest.raises((asyncio.CancelledError, Exception)):
        _post(http, SMALL)
    assert _inputs(tmp_path) == [] and publisher.jobs == []
    assert not [p for p in (tmp_path / "blobs").rglob(".tmp-*")]
    assert len(os.listdir("/proc/self/fd")) <= opened, "the staged file's descriptors closed"


def test_a_job_accepted_on_the_loop_is_found_at_once_and_a_202_when_its_record_fails(
    http: TestClient, publisher: LoopPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON job without a key or mail goes out on the event loop, its record written with
    those of its turn (services/gateway/accepted_batch.py)."""
    response = http.post("/jobs/render", json={"template": "document"})
    assert response.status_code == 202, response.text
    found = http.app.state.gateway.ledger.find(response.json()["id"])  # type: ignore[attr-defined]
    assert found is not None and (found.type, found.client) == ("render", "test-admin")

    def disk_full(*args: object) -> None:
        raise StateError("cannot record accepted jobs: database or disk is full")

    monkeypatch.setattr(SqliteSubmissionLedger, "accepted_jobs", disk_full)
    response = http.post("/jobs/render", json={"template": "document"})
    assert response.status_code == 202, response.text  # a 500 would have it sent twice
    assert [j["id"] for j in publisher.jobs][-1] == response.json()["id"]


def test_an_upload_cancelled_while_its_flush_runs_waits_for_it_then_keeps_nothing(
    http: TestClient, publisher: LoopPublisher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's stop cancels the request (an anyio cancel scope, as Starlette's, which
    cancels again at every await) while a thread flushes its upload: the request waits for
    the flush without spinning, then removes what was stored, as no job will name it."""
    started, gate = threading.Event(), threading.Event()
    real_commit = StagedFile.commit

    def held(staged: StagedFile) -> None:
        started.set()
        assert gate.wait(10), "the test never let the flush go on"
        real_commit(staged)

    monkeypatch.setattr(StagedFile, "commit", held)
    opened = len(os.listdir("/proc/self/fd"))

    async def post() -> None:
        transport = httpx.ASGITransport(app=http.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", headers=http.headers
        ) as client:
            await client.post("/jobs/resize", files={"file": ("a.png", SMALL)}, data={"width": "8"})

    assert http.portal is not None
    request = http.portal.start_task_soon(post)
    assert started.wait(10)
    request.cancel()
    cpu = time.process_time()
    time.sleep(0.5)
    waiting = time.process_time() - cpu
    gate.set()
    with pytest.raises(concurrent.futures.CancelledError):
        request.result(10)
    assert waiting < 0.25, f"the wait for the flush spun: {waiting:.2f} s of CPU in 0.5 s"
    deadline = time.monotonic() + 5
    while _inputs(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _inputs(tmp_path) == [] and publisher.jobs == []
    assert not [p for p in (tmp_path / "blobs").rglob(".tmp-*")]
    assert len(os.listdir("/proc/self/fd")) <= opened, "the staged file's descriptors closed"


def test_an_idempotency_key_holds_to_the_uploaded_bytes(
    http: TestClient, publisher: LoopPublisher, tmp_path: Path, upload: bytes
) -> None:
    """The same key with the same form but another image is another request: 409, and
    nothing of it kept; with the same image again, the first job."""
    other = upload[:-16] + bytes(16)  # the same size and header, other bytes at the end
    key = {"Idempotency-Key": "photo-1"}
    form = {"width": "8"}
    first = http.post("/jobs/resize", files={"file": ("a.png", upload)}, data=form, headers=key)
    clash = http.post("/jobs/resize", files={"file": ("a.png", other)}, data=form, headers=key)
    again = http.post("/jobs/resize", files={"file": ("a.png", upload)}, data=form, headers=key)
    assert first.status_code == 202, first.text
    assert clash.status_code == 409, clash.text
    assert "different request" in clash.json()["detail"]
    assert again.json()["id"] == first.json()["id"]
    assert [job["id"] for job in publisher.jobs] == [first.json()["id"]]
    assert [p.parent.name for p in _inputs(tmp_path)] == [first.json()["id"]]


def test_an_upload_is_hashed_only_for_an_idempotency_key(
    http: TestClient, monkeypatch: pytest.MonkeyPatch, upload: bytes
) -> None:
    """Without a key no fingerprint is asked for, and hashing the bytes (on the event loop,
    for an upload held in memory) would cost over half a millisecond a megabyte for
    nothing."""
    hashes: list[object] = []

    class CountedHashlib:
        def sha256(self, data: bytes = b"") -> object:
            hashes.append(hashlib.sha256(data))
            return hashes[-1]

    monkeypatch.setattr(uploads, "hashlib", CountedHashlib())
    assert _post(http, upload).status_code == 202
    assert hashes == []
    keyed = http.post(
        "/jobs/resize",
        files={"file": ("a.png", upload)},
        data={"width": "8"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert keyed.status_code == 202, keyed.text
    assert len(hashes) == 1


def test_an_upload_whose_bytes_cannot_be_read_again_for_its_key_is_a_503_that_keeps_nothing(
    http: TestClient, publisher: LoopPublisher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload over 1 MiB is hashed for its Idempotency-Key by reading the form's file
    again once it is stored. Should that read fail, the answer is the 503 of an upload not
    stored, as a failed store is: nothing kept, nothing sent, the key free for a retry."""
    hash_of_file = uploads._sha256_of_file

    def failing_read(file: BinaryIO) -> str:
        def read(_size: int = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(file, "read", read)
        return hash_of_file(file)

    monkeypatch.setattr(uploads, "_sha256_of_file", failing_read)
    key = {"Idempotency-Key": "large-1"}
    form = {"width": "8"}
    response = http.post("/jobs/resize", files={"file": ("a.png", LARGE)}, data=form, headers=key)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "the upload cannot be stored: EIO" in detail and "nothing was kept" in detail
    assert response.headers["Retry-After"] == uploads.RETRY_AFTER_S
    assert _inputs(tmp_path) == [] and publisher.jobs == []
    monkeypatch.setattr(uploads, "_sha256_of_file", hash_of_file)
    again = http.post("/jobs/resize", files={"file": ("a.png", LARGE)}, data=form, headers=key)
    assert again.status_code == 202, again.text
    assert [job["id"] for job in publisher.jobs] == [again.json()["id"]]
