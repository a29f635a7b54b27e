"""The read side of the read model, for the API, once for both backends: subclasses give a
connection per query (`_reading`) and the dialect; the SQL here is the same on both."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from services.audit.lifecycle import lifecycle_order
from services.audit.model_sql import Dialect, Row, Sql, head_of, timestamp
from shared.messages import ErrorInfo, JobRecord, RecordedEvent

_WORKER_EVENTS = "('job.started', 'job.succeeded', 'job.failed', 'job.retrying')"
_RATE_EVENTS = "('job.submitted', 'job.succeeded', 'job.failed')"


class SqlQueries(ABC):
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Sql]:
        """A connection for this thread's next query (or few)."""

    @abstractmethod
    def close(self) -> None: ...

    def job(self, job_id: str) -> JobRecord | None:
        d = self.dialect
        with self._reading() as db:
            rows = db.rows(f"SELECT * FROM {d.jobs} WHERE id = ?", (job_id,))
            if not rows:
                return None
            bodies = db.rows(
                f"SELECT body FROM {d.events} WHERE job_id = ? ORDER BY seq", (job_id,)
            )
        events = lifecycle_order([RecordedEvent.model_validate_json(b["body"]) for b in bodies])
        return job_record(rows[0], events)

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
        with self._reading() as db:
            rows = db.rows(
                f"SELECT * FROM {self.dialect.jobs} WHERE {' AND '.join(where)}"
                " ORDER BY first_seq DESC LIMIT ?",
                (*args, limit + 1),
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return [job_record(r, []) for r in rows], (rows[-1]["first_seq"] if more else None)

    def follow_ups(self, job_id: str) -> list[JobRecord]:
        """The jobs that name `job_id` as their parent, oldest first."""
        with self._reading() as db:
            rows = db.rows(
                f"SELECT * FROM {self.dialect.jobs} WHERE parent_id = ? ORDER BY first_seq",
                (job_id,),
            )
        return [job_record(r, []) for r in rows]

    def clients(self) -> list[str]:
        with self._reading() as db:
            rows = db.rows(
                f"SELECT DISTINCT client FROM {self.dialect.jobs} WHERE client IS NOT NULL"
            )
        return sorted(r["client"] for r in rows)

    def job_types(self) -> list[str]:
        with self._reading() as db:
            rows = db.rows(f"SELECT DISTINCT type FROM {self.dialect.jobs}")
        return sorted(r["type"] for r in rows)

    def workers(self, limit_events: int = 50_000) -> list[dict[str, Any]]:
        """Each worker instance seen in the newest `limit_events` events: its service, the
        job types it ran, its last event, jobs done and failed (retries count as failures)."""
        d = self.dialect
        with self._reading() as db:
            rows = db.rows(
                f"SELECT {d.field('service')} AS service, {d.field('instance')} AS instance,"
                f" type, event, recorded_at FROM {d.events}"
                f" WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM {d.events}) - ?"
                f" AND event IN {_WORKER_EVENTS} AND {d.field('refused')} IS NULL ORDER BY seq",
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
        d = self.dialect
        with self._reading() as db:
            rows = db.rows(
                f"SELECT type, event, COUNT(*) AS n FROM {d.events}"
                f" WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM {d.events}) - ?"
                f" AND recorded_at >= ? AND event IN {_RATE_EVENTS}"
                f" AND {d.field('refused')} IS NULL GROUP BY type, event",
                (limit_events, timestamp(since)),
            )
        found: dict[str, dict[str, int]] = {}
        for r in rows:
            counts = found.setdefault(r["type"], {"submitted": 0, "finished": 0})
            counts["submitted" if r["event"] == "job.submitted" else "finished"] += r["n"]
        return found

    def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        with self._reading() as db:
            rows = db.rows(
                f"SELECT seq, recorded_at, body FROM {self.dialect.events}"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, limit),
            )
        return [
            {"seq": r["seq"], "recorded_at": r["recorded_at"], "event": json.loads(r["body"])}
            for r in rows
        ]

    def stats(self) -> dict[str, Any]:
        jobs = self.dialect.jobs
        with self._reading() as db:
            by_status_rows = db.rows(
                f"SELECT type, status, COUNT(*) AS n FROM {jobs} GROUP BY type, status"
            )
            failures = db.rows(
                "SELECT status, COALESCE(error_kind, dead_reason, 'unknown') AS kind,"
                f" COUNT(*) AS n FROM {jobs} WHERE status IN ('failed', 'dead')"
                " GROUP BY 1, 2 ORDER BY n DESC"
            )
            dead = db.rows(
                f"SELECT dead_reason, COUNT(*) AS n FROM {jobs} WHERE status = 'dead' GROUP BY 1"
            )
            rejected_kinds = db.rows(
                f"SELECT COALESCE(error_kind, 'unknown') AS kind, COUNT(*) AS n FROM {jobs}"
                " WHERE status = 'rejected' GROUP BY 1 ORDER BY 2 DESC"
            )
            events = db.rows(f"SELECT COUNT(*) AS n FROM {self.dialect.events}")[0]["n"]
            head = head_of(db, self.dialect) or 0
        by_type: dict[str, dict[str, int]] = {}
        for r in by_status_rows:
            by_type.setdefault(r["type"], {})[r["status"]] = r["n"]
        # Refused submissions are not jobs: counted apart, never among the failed.
        rejected = {
            t: statuses.pop("rejected") for t, statuses in by_type.items() if "rejected" in statuses
        }
        by_type = {t: statuses for t, statuses in by_type.items() if statuses}
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
                "by_kind": {r["kind"]: r["n"] for r in rejected_kinds},
            },
            "failure_reasons": [
                {"status": r["status"], "kind": r["kind"], "count": r["n"]} for r in failures
            ],
            "dead_reasons": {r["dead_reason"] or "unknown": r["n"] for r in dead},
            "events": events,
            "head_seq": head,
        }

    def head_seq(self) -> int:
        with self._reading() as db:
            return head_of(db, self.dialect) or 0


def job_record(row: Row, events: list[RecordedEvent]) -> JobRecord:
    """A `jobs` row (and the job's events, when read) as the API shows it."""
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
