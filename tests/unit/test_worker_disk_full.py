"""A full disk is the machine's fault, not the job's: the job waits for room at the longest
back-off step, without spending its attempts, up to DISK_FULL_RETRIES times. A symbolic link
met in the blob store kills the job at once, saying so."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.errors import BlobError, TransientJobError
from shared.events import EventSource
from shared.files import disk_full_cause
from shared.messages import Job, decode_event
from shared.topology import DISK_FULL_RETRIES_HEADER, RETRY_DELAY_HEADER, Names
from shared.worker.settle import Settler
from tests.support.stub_channel import StubChannel
from tests.unit.test_worker_consumer import Rig

NAMES = Names("ns")
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def settler(channel: StubChannel, cap: int = 3) -> Settler:
    settings = Settings(namespace="ns", retry_delays_ms=(100, 200, 900), disk_full_retries=cap)
    return Settler(channel, NAMES, EventSource("tester", "host:1"), settings)


def wrapped(error: BaseException) -> TransientJobError:
    try:
        raise TransientJobError("cannot write the output") from error
    except TransientJobError as e:
        return e


def test_a_full_disk_is_found_however_it_is_wrapped() -> None:
    assert disk_full_cause(ENOSPC) is ENOSPC
    assert disk_full_cause(wrapped(ENOSPC)) is ENOSPC
    quota = OSError(errno.EDQUOT, "quota")
    assert disk_full_cause(wrapped(quota)) is quota
    full_db = sqlite3.OperationalError("database or disk is full")
    full_db.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert disk_full_cause(full_db) is full_db
    assert disk_full_cause(OSError(errno.EACCES, "denied")) is None
    assert disk_full_cause(wrapped(BlobError("no"))) is None


def test_a_job_meeting_a_full_disk_waits_at_the_longest_step_without_an_attempt() -> None:
    channel = StubChannel()
    channel.consume("q", lambda d: None)
    job = Job(type="resize", attempt=3)  # its ordinary retries are all spent
    delivery = channel.deliver(job, headers={DISK_FULL_RETRIES_HEADER: 1})
    outcome = settler(channel).wait_for_room(job, delivery, "the disk is full", time.monotonic())
    assert outcome == "retrying"
    assert channel.calls[1:] == [
        ("publish", "job.retrying"),
        ("confirm",),
        ("publish", "resize"),
        ("confirm",),
        ("ack", 1),
    ]
    again = channel.published[1]
    assert again.exchange == NAMES.retry_exchange
    assert again.headers == {RETRY_DELAY_HEADER: "900", DISK_FULL_RETRIES_HEADER: 2}
    assert (again.job.id, again.job.attempt) == (job.id, 3)
    retrying = decode_event(channel.published[0].body)
    assert retrying.error is not None and retrying.error.kind == "disk_full"
    assert retrying.attempt == 3


@pytest.mark.parametrize("count", [3, -1, "7", True])
def test_past_its_allowance_or_with_a_count_not_believed_it_retries_as_any_fault(
    count: Any,
) -> None:
    channel = StubChannel()
    channel.consume("q", lambda d: None)
    job = Job(type="resize", attempt=1)
    delivery = channel.deliver(job, headers={DISK_FULL_RETRIES_HEADER: count})
    settler(channel).wait_for_room(job, delivery, "the disk is full", time.monotonic())
    retrying, again = channel.published
    assert again.headers is not None and again.headers[RETRY_DELAY_HEADER] == "100"
    assert again.headers[DISK_FULL_RETRIES_HEADER] >= 3  # carried on: no fresh allowance
    assert again.job.attempt == 2
    assert decode_event(retrying.body).attempt == 1


def test_a_handler_meeting_a_full_disk_is_not_counted_an_attempt(
    rigs: list[Rig], tmp_path: Path
) -> None:
    def full(job: Job, blobs: Any) -> list[str]:
        raise wrapped(ENOSPC)

    rigs.append(rig := Rig(tmp_path, full))
    rig.deliver(Job(type="resize", attempt=2))  # the rig's budget: one retry, spent
    rig.settle_until(rig.settled(1))
    again = rig.channel.published[-1]  # job.retrying, then the copy
    assert (again.message_type, again.job.attempt) == ("resize", 2)
    assert again.headers is not None and again.headers[DISK_FULL_RETRIES_HEADER] == 1
    assert rig.channel.settled() == [("ack", 1)]


def test_a_link_in_the_blob_store_kills_the_job_saying_so(rigs: list[Rig], tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "outputs").mkdir()
    job = Job(type="resize")
    (tmp_path / "outputs" / job.id).symlink_to(outside)

    def writes(job: Job, blobs: Any) -> list[str]:
        return [blobs.write_bytes(f"outputs/{job.id}/a.png", b"x")]

    rigs.append(rig := Rig(tmp_path, writes))
    rig.deliver(job)
    rig.settle_until(rig.settled(1))
    assert rig.channel.calls[-3:] == [("publish", "job.failed"), ("confirm",), ("reject", 1)]
    failed = decode_event(rig.channel.published[-1].body)
    assert failed.error is not None and failed.error.kind == "blob_link"
    assert "is a symbolic link" in failed.error.message
    assert list(outside.iterdir()) == []
