"""Writing the log's checkpoints to the state store, and checking the log against them at start.

A checkpoint follows every batch once it is on disk (so one is never ahead of the log), the
start, each prune (before its anchor.json is written, so a real prune is on record before
its segment goes) and the shutdown. At start the log must agree with the newest checkpoint:
a log that ends before it, differs at its head, or starts after its base was cut or rewritten
while the service was down, and the service refuses to write after it (LogCorrupt).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.audit.segments import ORIGIN, Anchor, AuditLog, LogCorrupt
from shared.config import Settings
from shared.log import get_logger
from shared.messages import utc_now
from shared.state import Checkpoint, CheckpointStore, Signer, audit_log_id, open_checkpoints

log = get_logger(__name__)


class Checkpointer:
    def __init__(
        self,
        store: CheckpointStore,
        log_id: str,
        audit_log: AuditLog,
        *,
        audit_dir: str = "",
        signer: Signer | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.log_id = log_id
        self.audit_log = audit_log
        self.audit_dir = audit_dir
        self.signer = signer
        self.clock = clock

    @classmethod
    def open(cls, settings: Settings, audit_log: AuditLog) -> Checkpointer:
        """StateError when the store cannot be opened."""
        signer = Signer(settings.audit_signing_key) if settings.audit_signing_key else None
        return cls(
            open_checkpoints(settings),
            audit_log_id(settings),
            audit_log,
            audit_dir=str(settings.audit_dir.resolve()),
            signer=signer,
        )

    def write(self, reason: str, base: Anchor | None = None) -> Checkpoint:
        """A checkpoint of the head as it is now (StateError when it cannot be stored)."""
        base = base or self.audit_log.base
        cp = Checkpoint(
            log=self.log_id,
            seq=self.audit_log.head_seq,
            hash=self.audit_log.head_hash,
            base_seq=base.seq,
            base_hash=base.hash,
            reason=reason,
            at=self.clock().isoformat(),
            audit_dir=self.audit_dir,
        )
        return self.store.add(self.signer.sign(cp) if self.signer else cp)

    def start(self) -> Checkpoint:
        """Check the log against the newest checkpoint (LogCorrupt when it disagrees), write
        the start's checkpoint, and checkpoint every batch and prune from now on."""
        latest = self.store.latest(self.log_id)
        if latest is None:
            fresh = self.audit_log.head_seq == 0 and self.audit_log.base == ORIGIN
            cp = self.write("origin" if fresh else "adopted")
            if not fresh:
                # An older release's log: trusted as found, protected from here on.
                log.warning("audit_log_adopted", head_seq=cp.seq, base_seq=cp.base_seq)
        else:
            problem = self.disagreement(latest)
            if problem:
                raise LogCorrupt(f"{problem}; run `jobsuite audit verify`")
            cp = self.write("start")
        self.audit_log.after_append = self._after_batch
        self.audit_log.before_anchor = self._before_prune
        return cp

    def disagreement(self, latest: Checkpoint) -> str | None:
        """Why the log on disk cannot follow `latest`, or None. Cheap: head and base only
        (`jobsuite audit verify` compares every checkpoint)."""
        head_seq, head_hash, base = (
            self.audit_log.head_seq,
            self.audit_log.head_hash,
            self.audit_log.base,
        )
        mine = self.signer and latest.signature and latest.key_id == self.signer.key_id
        if mine and self.signer and not self.signer.valid(latest):
            return f"checkpoint #{latest.id} has a bad signature: the checkpoint store was edited"
        if latest.seq > head_seq:
            return (
                f"the log ends at seq {head_seq} but checkpoint #{latest.id} ({latest.at})"
                f" recorded seq {latest.seq}: records were removed from its end"
            )
        if latest.seq == head_seq and latest.hash != head_hash:
            return f"the record at seq {head_seq} is not the one checkpoint #{latest.id} recorded"
        if base.seq > latest.base_seq or (
            base.seq == latest.base_seq and base.hash != latest.base_hash
        ):
            return (
                f"the log starts after seq {base.seq} (anchor.json) but the audit service"
                f" pruned only up to seq {latest.base_seq}: anchor.json was not written by it"
            )
        return None

    def _after_batch(self) -> None:
        self.write("batch")

    def _before_prune(self, anchor: Anchor) -> None:
        self.write("prune", base=anchor)
        dropped = self.store.drop_before(self.log_id, anchor.seq)
        log.info("checkpoints_pruned", below_seq=anchor.seq, checkpoints=dropped)

    def close(self) -> None:
        """The shutdown's checkpoint, then the store closes."""
        try:
            self.write("shutdown")
        finally:
            self.store.close()
