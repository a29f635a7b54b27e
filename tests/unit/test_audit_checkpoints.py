"""Checkpoints of the audit chain: the store, signing, the start-up check, and what verify
finds when the log is truncated, re-anchored by hand or recomputed. Every test of the store
runs on both backends (`state_settings`: SQLite, PostgreSQL)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.audit.checkpoint_check import compare, wanted_seqs
from services.audit.checkpointing import Checkpointer
from services.audit.health import WriteHealth
from services.audit.segments import AuditLog, LogCorrupt
from services.audit.verify import verify
from shared.config import Settings
from shared.files import probe_write
from shared.state import Checkpoint, CheckpointStore, Signer, open_checkpoints
from tests.support.audit_tamper import (
    drop_oldest_with_forged_anchor,
    recompute_chain,
    rewrite_stored_checkpoints,
    truncate_newest,
)

KEY = "k" * 32
LOG = "ns-1"


def at() -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def state(state_settings: Settings) -> Settings:
    """Where the checkpoints are kept: the state store's settings, once per backend."""
    return state_settings


def open_store(state: Settings) -> CheckpointStore:
    return open_checkpoints(state)


def history_of(state: Settings) -> list[Checkpoint]:
    store = open_store(state)
    try:
        return store.history(LOG)
    finally:
        store.close()


def open_log(tmp_path: Path, segment_bytes: int = 1 << 20) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "log", segment_bytes)


def checkpointer(tmp_path: Path, state: Settings, key: str | None = KEY) -> Checkpointer:
    return Checkpointer(
        open_store(state),
        LOG,
        open_log(tmp_path, segment_bytes=400),
        signer=Signer(key) if key else None,
        clock=at,
    )


def append(audit_log: AuditLog, count: int) -> None:
    for i in range(count):
        audit_log.append([("events", {"event_id": f"e{audit_log.head_seq + i}"})], "t")


def findings(tmp_path: Path, state: Settings, key: str | None = KEY) -> list[str]:
    history = history_of(state)
    report = verify(tmp_path / "audit", wanted=wanted_seqs(history))
    return compare(report, history, Signer(key) if key else None).problems


def written(tmp_path: Path, state: Settings, records: int = 12) -> None:
    """A log of `records` single-record batches over several segments, checkpointed as the
    service does, then closed."""
    cp = checkpointer(tmp_path, state)
    cp.start()
    append(cp.audit_log, records)
    cp.close()
    cp.audit_log.close()


# --- the store and the signature -------------------------------------------------------


def test_store_keeps_every_checkpoint_per_log(state: Settings) -> None:
    store = open_store(state)
    for seq in (1, 2, 3):
        store.add(Checkpoint(LOG, seq, f"{seq:064x}", 0, "0" * 64, "batch", "t"))
    store.add(Checkpoint("other", 9, "9" * 64, 0, "0" * 64, "batch", "t"))
    assert [cp.seq for cp in store.history(LOG)] == [1, 2, 3]
    latest = store.latest(LOG)
    assert latest is not None and latest.seq == 3 and latest.id == 3
    assert store.latest("nobody") is None
    assert store.drop_before(LOG, 3) == 1  # seq 2 goes; the first (origin) stays
    assert [cp.seq for cp in store.history(LOG)] == [1, 3]
    store.close()


def test_signature_covers_seq_hash_base_log_and_time() -> None:
    signer = Signer(KEY)
    cp = signer.sign(Checkpoint(LOG, 5, "a" * 64, 0, "0" * 64, "batch", "2025-01-01T00:00:00"))
    assert signer.valid(cp)
    for change in ({"seq": 6}, {"hash": "b" * 64}, {"log": "x"}, {"at": "2026"}, {"base_seq": 1}):
        assert not signer.valid(_with(cp, **change)), change
    assert not Signer("z" * 32).valid(cp)
    assert Signer("z" * 32).key_id != signer.key_id


def _with(cp: Checkpoint, **changes: object) -> Checkpoint:
    return replace(cp, **changes)  # type: ignore[arg-type]


# --- the service side ------------------------------------------------------------------


def test_first_start_writes_the_origin_then_each_batch_and_the_shutdown(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state, records=3)
    history = history_of(state)
    assert [(cp.reason, cp.seq) for cp in history] == [
        ("origin", 0),
        ("batch", 1),
        ("batch", 2),
        ("batch", 3),
        ("shutdown", 3),
    ]
    assert all(Signer(KEY).valid(cp) for cp in history)


def test_an_existing_log_is_adopted_at_its_first_start(tmp_path: Path, state: Settings) -> None:
    old = open_log(tmp_path)
    append(old, 4)
    old.close()
    cp = checkpointer(tmp_path, state).start()
    assert (cp.reason, cp.seq) == ("adopted", 4)
    assert findings(tmp_path, state) == []


def test_the_service_refuses_a_log_cut_behind_its_checkpoint(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state)
    truncate_newest(tmp_path / "audit" / "log", 2)
    cut = r"ends at seq 10 .* recorded seq 12: records were removed"
    with pytest.raises(LogCorrupt, match=cut):
        checkpointer(tmp_path, state).start()


def test_the_service_refuses_a_hand_written_anchor(tmp_path: Path, state: Settings) -> None:
    written(tmp_path, state)
    drop_oldest_with_forged_anchor(tmp_path / "audit" / "log")
    with pytest.raises(LogCorrupt, match=r"anchor\.json was not written by it"):
        checkpointer(tmp_path, state).start()


def test_a_prune_is_checkpointed_before_its_anchor_so_verify_accepts_it(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state)
    cp = checkpointer(tmp_path, state)
    cp.start()
    assert cp.audit_log.prune(older_than=2e9)  # every closed segment
    cp.close()
    history = history_of(state)
    prunes = [c for c in history if c.reason == "prune"]
    assert prunes and prunes[-1].base_seq == cp.audit_log.base.seq > 0
    assert history[0].reason == "origin"  # the origin is kept
    assert findings(tmp_path, state) == []


# --- what verify finds -----------------------------------------------------------------


def test_an_untouched_log_agrees_with_its_checkpoints(tmp_path: Path, state: Settings) -> None:
    written(tmp_path, state)
    assert findings(tmp_path, state) == []
    assert findings(tmp_path, state, key=None) == []


def test_newest_records_cut_off_are_found_without_a_read_model(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state)
    truncate_newest(tmp_path / "audit" / "log", 3)
    (problem,) = findings(tmp_path, state, key=None)
    assert problem.startswith("TRUNCATED: the log ends at seq 9 but checkpoint")
    assert "records 10..12 were removed from its end" in problem


def test_a_deleted_oldest_segment_with_a_forged_anchor_is_found(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state)
    start = drop_oldest_with_forged_anchor(tmp_path / "audit" / "log")
    (problem,) = findings(tmp_path, state, key=None)
    assert problem.startswith(f"ANCHOR: the log starts after seq {start} (anchor.json)")
    assert "pruned only up to seq 0" in problem


def test_a_recomputed_chain_is_found_by_the_checkpoints_it_left_alone(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state)
    recompute_chain(tmp_path / "audit" / "log", lambda e: {**e, "forged": True})
    (problem,) = findings(tmp_path, state, key=None)
    assert problem.startswith("REWRITTEN: the record at seq 1 is not the one checkpoint")


def test_a_chain_recomputed_with_its_checkpoints_is_found_only_with_the_key(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state)
    hashes = recompute_chain(tmp_path / "audit" / "log", lambda e: {**e, "forged": True})
    rewrite_stored_checkpoints(state, hashes)
    assert findings(tmp_path, state, key=None) == []  # the documented limit
    (problem,) = findings(tmp_path, state)
    assert problem.startswith("SIGNATURE: 13 checkpoints do not match their signature")
    assert problem.endswith("the checkpoint store was edited")


def test_with_the_key_an_unsigned_newest_checkpoint_fails(tmp_path: Path, state: Settings) -> None:
    cp = checkpointer(tmp_path, state, key=None)
    cp.start()
    append(cp.audit_log, 2)
    cp.close()
    (problem,) = findings(tmp_path, state)
    assert problem.startswith("UNSIGNED: the newest checkpoint")


def test_no_checkpoint_is_a_warning_without_the_key_and_a_failure_with_it(
    tmp_path: Path,
) -> None:
    audit_log = open_log(tmp_path)
    append(audit_log, 2)
    report = verify(tmp_path / "audit")
    plain = compare(report, [], None)
    assert plain.problems == [] and "no checkpoint of this log" in plain.warnings[0]
    (problem,) = compare(report, [], Signer(KEY)).problems
    assert problem.startswith("MISSING: AUDIT_SIGNING_KEY is set but no checkpoint")


# --- health ----------------------------------------------------------------------------


def test_health_is_stalled_while_a_folder_cannot_be_written_or_a_batch_failed(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    folder = tmp_path / "log"
    folder.mkdir()
    health = WriteHealth([folder], clock=lambda: clock[0])
    assert health.stalled() is None and os.listdir(folder) == []  # the probe cleans up
    health.failed("recording failed: OSError: [Errno 28] No space left on device")
    assert health.stalled() == "recording failed: OSError: [Errno 28] No space left on device"
    health.succeeded()
    folder.rmdir()
    assert health.stalled() is None  # probed a moment ago: cached
    clock[0] += 5
    reason = health.stalled()
    assert reason is not None and reason.startswith(f"cannot write to {folder}:")
    assert probe_write(tmp_path) is None


def test_a_new_key_starts_cleanly_and_verify_follows_the_newest(
    tmp_path: Path, state: Settings
) -> None:
    written(tmp_path, state, records=2)
    rotated = "n" * 32
    cp = checkpointer(tmp_path, state, key=rotated)
    assert cp.start().reason == "start"
    cp.close()
    assert findings(tmp_path, state, key=rotated) == []
    (problem,) = findings(tmp_path, state)  # the old key: the newest is not its own
    assert problem.startswith("SIGNATURE: the newest checkpoint #")
    assert "signed with another key" in problem
