"""What an attacker with write access to the audit folder (and perhaps the state folder, but
not AUDIT_SIGNING_KEY) can do to the log: the cases `jobsuite audit verify` must catch."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from services.audit.chain import parse_record, seal
from services.audit.segments import ANCHOR_NAME, list_segments, read_anchor
from shared.config import Settings
from shared.state import checkpoints_path
from tests.support.postgres import query

Edit = Callable[[dict[str, Any]], dict[str, Any]]


def truncate_newest(log_dir: Path, count: int) -> None:
    """Cut the newest `count` records off the end of the log, across segments if need be."""
    while count > 0:
        _first, path = list_segments(log_dir)[-1]
        lines = path.read_bytes().splitlines(keepends=True)
        cut = min(count, len(lines))
        kept = lines[: len(lines) - cut]
        if kept:
            path.write_bytes(b"".join(kept))
        else:
            path.unlink()
        count -= cut


def drop_oldest_with_forged_anchor(log_dir: Path) -> int:
    """Delete the oldest segment and hand-write the anchor.json a prune would have left;
    returns the seq the log now starts after."""
    _first, path = list_segments(log_dir)[0]
    last = parse_record(path.read_bytes().splitlines()[-1])
    path.unlink()
    body = {"seq": last.seq, "hash": last.hash, "last_pruned_segment": path.name}
    (log_dir / ANCHOR_NAME).write_text(json.dumps(body))
    return last.seq


def recompute_chain(log_dir: Path, edit: Edit) -> dict[int, str]:
    """Rewrite every record's event with `edit` and seal the whole chain again with valid
    hashes, in the same segment files; returns the new hash of every seq."""
    anchor = read_anchor(log_dir)
    prev = anchor.hash if anchor else "0" * 64
    hashes: dict[int, str] = {}
    for _first, path in list_segments(log_dir):
        out = []
        for raw in path.read_bytes().splitlines():
            old = parse_record(raw)
            new = seal(old.seq, prev, old.recorded_at, old.source, edit(dict(old.event)))
            out.append(new.line())
            prev = hashes[new.seq] = new.hash
        path.write_bytes(b"".join(out))
    return hashes


def rewrite_checkpoints(store: Path, hashes: dict[int, str]) -> int:
    """Point every checkpoint at the recomputed hashes, as someone who can write the state
    store but does not hold the key would (the signatures stay as they were)."""
    db = sqlite3.connect(store)
    try:
        with db:
            rows = db.execute("SELECT id, seq FROM checkpoints").fetchall()
            for row_id, seq in rows:
                if seq in hashes:
                    db.execute(
                        "UPDATE checkpoints SET hash = ? WHERE id = ?", (hashes[seq], row_id)
                    )
        return len(rows)
    finally:
        db.close()


def rewrite_stored_checkpoints(settings: Settings, hashes: dict[int, str]) -> int:
    """`rewrite_checkpoints` in whichever store the settings name (SQLite or PostgreSQL)."""
    if not settings.state_url:
        return rewrite_checkpoints(checkpoints_path(settings), hashes)
    rows = query(settings.state_url, "SELECT id, seq FROM checkpoints")
    with psycopg.connect(settings.state_url) as db:
        for row_id, seq in rows:
            if seq in hashes:
                db.execute(
                    "UPDATE checkpoints SET hash = %s WHERE id = %s", (hashes[int(seq)], row_id)
                )
    return len(rows)
