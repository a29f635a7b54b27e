"""Submissions per second, per key: a token bucket in this process (`KeyLimits`).

Each key's bucket holds up to `burst` tokens and refills at `submissions_per_second`; a
submission (a POST under /jobs/) takes one, and an empty bucket is a 429 whose `Retry-After`
says when the next token comes. Per process: N gateway replicas allow N times the rate, which
is what a burst limit is for (the hourly mail limit, which must hold across replicas, is
counted in the submissions store instead).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import Scope

from shared.auth import Caller


@dataclass
class _Bucket:
    tokens: float
    at: float


class SubmissionRate:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait_s(self, caller: Caller) -> float:
        """0 when the caller may submit now (a token is taken), else seconds to wait."""
        if caller.limits is None or caller.name is None:
            return 0.0
        rate, burst = caller.limits.submissions_per_second, caller.limits.burst
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(caller.name, _Bucket(float(burst), now))
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate

    def check(self, scope: Scope, caller: Caller) -> JSONResponse | None:
        """For `RequireKey`: a 429 when a submission comes too fast, else None."""
        if scope.get("method") != "POST" or not str(scope.get("path", "")).startswith("/jobs/"):
            return None
        wait = self.wait_s(caller)
        if wait <= 0:
            return None
        assert caller.limits is not None
        return JSONResponse(
            {
                "detail": f"too many submissions: the API key {caller.name!r} may submit"
                f" {caller.limits.submissions_per_second:g} a second (bursts of"
                f" {caller.limits.burst})",
                "reason": "rate_limited",
            },
            429,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
