"""The read side of the read model, for the API: one SQLite connection per reading thread."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from services.audit.lifecycle import lifecycle_order
from services.audit.readmodel import connect, timestamp
from shared.messages import ErrorInfo, JobRecord, RecordedEvent


class Queries:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path, readonly=True)
        return db

    def job(self, job_id: str) -> JobRecord | None:
        db = self._db()
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        bodies = db.execute("SELECT body FROM events WHERE job_id = ? ORDER BY seq", (job_id,))
        events = lifecycle_order([RecordedEvent.model_validate_json(b[0]) for b in bodies])
        return _record(row, events)

    def jobs(
        self,
        *,
        status: str | None,
        job_type: str | None,
        since: datetime | None,
        limit: int,
        before: int | None,
        client: str | None = None,
        id_prefix: str | None = None,
    ) -> tuple[list[JobRecord], int | None]:
        """Newest first (by when the audit first heard of the job). `before` is the cursor
        from the previous page; the second value is the cursor for the next page, if any."""
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        for clause, value in (
            ("status = ?", status),
            ("type = ?", job_type),
            ("updated_at >= ?", timestamp(since) if since else None),
            ("first_seq < ?", before),
            ("client = ?", client),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        if id_prefix:  # exactly, case and all (LIKE would ignore case)
            where.append("substr(id, 1, ?) = ?")
            args += [len(id_prefix), id_prefix]
        rows = (
            self._db()
            .execute(
                f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY first_seq DESC LIMIT ?",
                (*args, limit + 1),
            )
            .fetchall()
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return [_record(r, []) for r in rows], (rows[-1]["first_seq"] if more else None)

    def follow_ups(self, job_id: str) -> list[JobRecord]:
        """The jobs that name `job_id` as their parent, oldest first."""
        rows = self._db().execute(
            "SELECT * FROM jobs WHERE parent_id = ? ORDER BY first_seq", (job_id,)
        )
        return [_record(r, []) for r in rows]

    def clients(self) -> list[str]:
        rows = self._db().execute("SELECT DISTINCT client FROM jobs WHERE client IS NOT NULL")
        return sorted(r[0] for r in rows)

    def job_types(self) -> list[str]:
        return sorted(r[0] for r in self._db().execute("SELECT DISTINCT type FROM jobs"))

    def workers(self, limit_events: int = 50_000) -> list[dict[str, Any]]:
        """Each worker instance seen in the newest `limit_events` events: its service, the
        job types it ran, its last event, jobs done and failed (retries count as failures)."""
        rows = self._db().execute(
            "SELECT json_extract(body, '$.service') AS service,"
            " json_extract(body, '$.instance') AS instance, type, event, recorded_at"
            " FROM events WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM events) - ?"
            " AND event IN ('job.started', 'job.succeeded', 'job.failed', 'job.retrying')"
            " AND json_extract(body, '$.refused') IS NULL ORDER BY seq",
            (limit_events,),
        )
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            worker = seen.setdefault(
                (r["service"], r["instance"]),
                {"service": r["service"], "instance": r["instance"], "types": set(),
                 "done": 0, "failed": 0, "last_event": "", "last_at": ""},
            )  # fmt: skip
            worker["types"].add(r["type"])
            worker["done"] += r["event"] == "job.succeeded"
            worker["failed"] += r["event"] in ("job.failed", "job.retrying")
            worker["last_event"], worker["last_at"] = r["event"], r["recorded_at"]
        workers = [{**w, "types": sorted(w["types"])} for w in seen.values()]
        return sorted(workers, key=lambda w: w["last_at"], reverse=True)

    def rates(self, since: datetime, limit_events: int = 50_000) -> dict[str, dict[str, int]]:
        """Per job type, the jobs submitted and finished (succeeded or failed: a dead job
        failed first) since `since`, from the newest `limit_events` events."""
        rows = self._db().execute(
            "SELECT type, event, COUNT(*) FROM events"
            " WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM events) - ? AND recorded_at >= ?"
            " AND event IN ('job.submitted', 'job.succeeded', 'job.failed')"
            " AND json_extract(body, '$.refused') IS NULL GROUP BY type, event",
            (limit_events, timestamp(since)),
        )
        found: dict[str, dict[str, int]] = {}
        for job_type, event, n in rows:
            counts = found.setdefault(job_type, {"submitted": 0, "finished": 0})
            counts["submitted" if event == "job.submitted" else "finished"] += n
        return found

    def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT seq, recorded_at, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (since, limit),
        )
        return [
            {"seq": r["seq"], "recorded_at": r["recorded_at"], "event": json.loads(r["body"])}
            for r in rows
        ]

    def stats(self) -> dict[str, Any]:
        db = self._db()
        by_type: dict[str, dict[str, int]] = {}
        for r in db.execute("SELECT type, status, COUNT(*) FROM jobs GROUP BY type, status"):
            by_type.setdefault(r[0], {})[r[1]] = r[2]
        failures = db.execute(
            "SELECT status, COALESCE(error_kind, dead_reason, 'unknown') AS kind, COUNT(*) AS n"
            " FROM jobs WHERE status IN ('failed', 'dead') GROUP BY 1, 2 ORDER BY n DESC"
        )
        dead = db.execute("SELECT dead_reason, COUNT(*) FROM jobs WHERE status = 'dead' GROUP BY 1")
        # Refused submissions are not jobs: counted apart, never among the failed.
        rejected = {
            t: statuses.pop("rejected") for t, statuses in by_type.items() if "rejected" in statuses
        }
        by_type = {t: statuses for t, statuses in by_type.items() if statuses}
        rejected_kinds = db.execute(
            "SELECT COALESCE(error_kind, 'unknown'), COUNT(*) FROM jobs WHERE status = 'rejected'"
            " GROUP BY 1 ORDER BY 2 DESC"
        )
        by_status: dict[str, int] = {}
        for statuses in by_type.values():
            for status, n in statuses.items():
                by_status[status] = by_status.get(status, 0) + n
        return {
            "jobs": sum(by_status.values()),
            "by_status": by_status,
            "by_type": by_type,
            "rejected": {
                "submissions": sum(rejected.values()),
                "by_type": rejected,
                "by_kind": {r[0]: r[1] for r in rejected_kinds},
            },
            "failure_reasons": [{"status": r[0], "kind": r[1], "count": r[2]} for r in failures],
            "dead_reasons": {r[0] or "unknown": r[1] for r in dead},
            "events": db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
            "head_seq": self.head_seq(),
        }

    def head_seq(self) -> int:
        row = self._db().execute("SELECT value FROM meta WHERE key = 'head_seq'").fetchone()
        return int(row[0]) if row else 0


def _record(row: sqlite3.Row, events: list[RecordedEvent]) -> JobRecord:
    error = None
    if row["error_kind"] is not None:
        error = ErrorInfo(kind=row["error_kind"], message=row["error_message"] or "")
    return JobRecord(
        id=row["id"],
        type=row["type"],
        status=row["status"],
        attempts=row["attempts"],
        parent_id=row["parent_id"],
        client=row["client"],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
        error=error,
        outputs=json.loads(row["outputs"]),
        events=events,
        dead_reason=row["dead_reason"],
        replays=row["replays"],
        deleted_at=_deleted_at(events),
    )


def _deleted_at(events: list[RecordedEvent]) -> datetime | None:
    """When the job's blobs were first deleted (a believed `job.deleted`), or None."""
    deleted = [e.at for e in events if e.event == "job.deleted" and not e.refused]
    return min(deleted) if deleted else None
