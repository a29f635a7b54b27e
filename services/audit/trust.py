"""Who may publish which events (AUDIT_PUBLISHERS), and the verdict on one event.

RabbitMQ refuses a message whose `user_id` is not the publishing connection's user, so the
`user_id` of an event is the broker user that really sent it. Without a policy every event
is believed and its publisher only recorded. With one, an event from a user not allowed to
send it (or with no user_id) is refused: recorded, marked, and left out of the job's status.
Dead letters are not judged: only the broker puts them in `audit.dead` (no service user may
publish to `jobs.dead`), and the `job.dead` made from one is the audit's own word. The audit
publishes that `job.dead` on `events` too (announce.py); the copy that comes back is a
duplicate of the recorded event and is dropped before any verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config import Settings

EVERY_EVENT = "*"


@dataclass(frozen=True)
class PublisherPolicy:
    """Broker user → the events it may publish; empty: record only."""

    rights: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> PublisherPolicy:
        return cls(dict(settings.audit_publishers))

    @property
    def enforced(self) -> bool:
        return bool(self.rights)

    def refusal(self, source: str, publisher: str | None, event: str) -> str | None:
        """Why this event is not to be believed, or None."""
        if not self.enforced or source == "dead":
            return None
        if publisher is None:
            return f"{event} published without a user_id: its publisher is unknown"
        allowed = self.rights.get(publisher)
        if allowed is None:
            return f"broker user {publisher!r} may publish no events (AUDIT_PUBLISHERS)"
        if event not in allowed and EVERY_EVENT not in allowed:
            return f"broker user {publisher!r} may not publish {event} (AUDIT_PUBLISHERS)"
        return None


RECORD_ONLY = PublisherPolicy()
