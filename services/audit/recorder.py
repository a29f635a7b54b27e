"""Recording events: deduplicate, append to the log (fsynced), then apply to the read model.

The order makes a crash harmless: the log is written before the broker gets its ack, and a
read model that fell behind the log is caught up from the log before the next batch, so an
event redelivered after a crash is recognised by its id and recorded once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from services.audit.chain import Marks, Record
from services.audit.model import ReadModelWriter, open_read_model, rebuild_read_model
from services.audit.model_sql import iter_chunks, timestamp
from services.audit.segments import AuditLog
from services.audit.trust import RECORD_ONLY, PublisherPolicy
from services.audit.verify import LOG_DIRNAME
from shared.config import Settings
from shared.log import get_logger
from shared.messages import Event, utc_now

log = get_logger("audit.record")
_CATCH_UP_CHUNK = 500

# (source, event) or (source, event, publisher): the broker user that published it, if known.
Entry = tuple[str, Event] | tuple[str, Event, str | None]


class Recorder:
    def __init__(
        self,
        audit_log: AuditLog,
        model: ReadModelWriter,
        clock: Callable[[], datetime] = utc_now,
        policy: PublisherPolicy = RECORD_ONLY,
    ) -> None:
        self.audit_log = audit_log
        self.model = model
        self.clock = clock
        self.policy = policy
        # Told of each batch once it is on disk and in the read model (the console's live view).
        self.on_recorded: Callable[[list[Record]], None] | None = None

    @classmethod
    def open(cls, settings: Settings) -> Recorder:
        audit_log = AuditLog(settings.audit_dir / LOG_DIRNAME, settings.audit_segment_bytes)
        try:
            model = open_read_model(settings)
        except BaseException:
            audit_log.close()  # the log's lock and files: the caller never gets a recorder
            raise
        recorder = cls(audit_log, model, policy=PublisherPolicy.from_settings(settings))
        try:
            recorder.catch_up()
        except BaseException:
            recorder.close()
            raise
        return recorder

    def catch_up(self) -> int:
        """Apply log records the read model has not seen yet (after a crash, or a rebuild)."""
        applied = 0
        if self.model.head_seq >= self.audit_log.head_seq:
            return applied
        for chunk in iter_chunks(self.audit_log.records(self.model.head_seq), _CATCH_UP_CHUNK):
            self.model.apply(chunk)
            applied += len(chunk)
        if applied:
            log.info("read_model_caught_up", records=applied, head_seq=self.model.head_seq)
        return applied

    def record(self, entries: Sequence[Entry]) -> list[Record]:
        """Record `(source, event[, publisher])` entries not recorded before, each judged by
        the publisher policy; returns the new records, which are on disk and in the read
        model when this returns."""
        self.catch_up()
        known = self.model.known_event_ids([entry[1].event_id for entry in entries])
        fresh: list[tuple[str, dict[str, object], Marks]] = []
        for entry in entries:
            source, event = entry[0], entry[1]
            publisher = entry[2] if len(entry) == 3 else None
            if event.event_id in known:
                # Expected for the audit's own job.dead, back from `events` (announce.py).
                log.info(
                    "duplicate_event_ignored",
                    event_id=event.event_id,
                    job_id=event.job_id,
                    job_event=event.event,
                )
                continue
            known.add(event.event_id)
            refused = self.policy.refusal(source, publisher, event.event)
            body = event.model_dump(mode="json", exclude_none=True)
            fresh.append((source, body, Marks(publisher, refused)))
        records = self.audit_log.append(fresh, timestamp(self.clock()))
        self.model.apply(records)
        for r in records:
            _log_record(r)
        if records and self.on_recorded is not None:
            self.on_recorded(records)
        return records

    def prune(self, retention_days: int) -> None:
        """Drop read-model rows and closed log segments older than the retention period."""
        cutoff = self.clock() - timedelta(days=retention_days)
        jobs = self.model.prune(cutoff)
        if jobs:
            log.info("read_model_pruned", jobs=jobs, older_than=timestamp(cutoff))
        self.audit_log.prune(cutoff.timestamp())

    def close(self) -> None:
        self.audit_log.close()
        self.model.close()


def _log_record(r: Record) -> None:
    """One line per recorded event: `docker compose logs -f audit` reads as the audit trail."""
    e = r.event
    error = e.get("error") or {}
    # A refused event is a warning: someone sent what they may not (or forged it).
    (log.warning if r.marks.refused else log.info)(
        "recorded",
        seq=r.seq,
        job_event=e.get("event"),
        job_id=e.get("job_id"),
        type=e.get("type"),
        attempt=e.get("attempt"),
        by=f"{e.get('service')}@{e.get('instance')}",
        publisher=r.marks.publisher,
        refused=r.marks.refused,
        at=e.get("at"),
        duration_ms=e.get("duration_ms"),
        outputs=e.get("outputs"),
        error_kind=error.get("kind"),
        error=error.get("message"),
        hash=r.hash[:16],
    )


def rebuild(settings: Settings) -> int:
    """Build a fresh read model from the log and swap it in; the service must be stopped."""
    audit_log = AuditLog(settings.audit_dir / LOG_DIRNAME, settings.audit_segment_bytes)

    def fill(model: ReadModelWriter) -> int:
        count = Recorder(audit_log, model).catch_up()
        model.prune(utc_now() - timedelta(days=settings.audit_retention_days))
        return count

    try:
        return rebuild_read_model(settings, fill)
    finally:
        audit_log.close()
