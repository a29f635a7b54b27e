"""The chaos hook: make the next N SMTP transactions fail with a chosen code.

A transaction (one MAIL FROM) is picked to fail when it starts; the failure is then
answered at the chosen stage: to MAIL itself, to every RCPT (the client sees every recipient
refused) or to DATA after the message was sent.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Literal

Stage = Literal["mail", "rcpt", "data"]
STAGES: tuple[Stage, ...] = ("mail", "rcpt", "data")


@dataclass(frozen=True)
class ChaosRule:
    code: int
    times: int | None = None  # None: every transaction until cleared
    on: Stage = "data"

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise ValueError("code must be an SMTP error code, 400-599")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1")
        if self.on not in STAGES:
            raise ValueError(f"on must be one of {', '.join(STAGES)}")

    @classmethod
    def from_spec(cls, spec: str) -> ChaosRule | None:
        """ "451", "451:2" or "451:2:rcpt" (checked by shared.config); "" is no rule."""
        if not spec:
            return None
        code, _, rest = spec.partition(":")
        times, _, on = rest.partition(":")
        stage: Stage = next((s for s in STAGES if s == on), "data")
        return cls(int(code), int(times) if times else None, stage)

    def reply(self) -> str:
        if self.code < 500:
            return f"{self.code} 4.3.0 Chaos: temporary failure injected by the test hook"
        return f"{self.code} 5.3.0 Chaos: permanent failure injected by the test hook"


class Chaos:
    """The rule in force and how many transactions it still applies to. Thread-safe: the
    SMTP side takes from it on the event loop, the HTTP side sets it from worker threads."""

    def __init__(self, rule: ChaosRule | None = None) -> None:
        self._lock = threading.Lock()
        self._rule = rule
        self._left = rule.times if rule else None

    def set(self, rule: ChaosRule) -> None:
        with self._lock:
            self._rule, self._left = rule, rule.times

    def clear(self) -> None:
        with self._lock:
            self._rule, self._left = None, None

    def take(self) -> ChaosRule | None:
        """The rule for a transaction that starts now, counting it; None: let it through."""
        with self._lock:
            rule = self._rule
            if rule is None:
                return None
            if self._left is not None:
                self._left -= 1
                if self._left <= 0:
                    self._rule, self._left = None, None
            return rule

    def state(self) -> dict[str, object]:
        with self._lock:
            if self._rule is None:
                return {"active": False}
            return {"active": True, **asdict(self._rule), "left": self._left}
