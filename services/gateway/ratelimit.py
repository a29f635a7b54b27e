"""Submissions per second, per key: a token bucket per key (`KeyLimits`).

Each key's bucket holds up to `burst` tokens and refills at `submissions_per_second`; a
submission (a POST under /jobs/) takes one, and an empty bucket is a 429 whose `Retry-After`
says when the next token comes. The buckets are this process's (`LocalBuckets`), or, with
GATEWAY_WORKERS above 1, a table all the gateway's processes share (`shared_buckets.py`), so
the rate holds whichever process a request reaches. Per gateway: N gateway replicas allow N
times the rate, which is what a burst limit is for (the hourly mail limit, which must hold
across replicas, is counted in the submissions store instead).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.responses import JSONResponse
from starlette.types import Scope

from shared.auth import Caller


class Buckets(Protocol):
    def take(self, name: str, rate: float, burst: int, now: float) -> float:
        """A token from `name`'s bucket (refilled at `rate` a second up to `burst` since it was
        last looked at, full when new): 0 when one was there, else seconds until one is."""
        ...


def take_token(
    tokens: float, at: float, rate: float, burst: int, now: float
) -> tuple[float, float, float]:
    """A bucket (its tokens, refilled until `at`) once refilled until `now` and, when a token
    was there, that token taken: its tokens, its new `at`, and the wait (0 when taken). A
    `now` before `at` (read by another process before this one's turn) refills nothing."""
    at, refill = max(at, now), max(0.0, now - at)
    tokens = min(float(burst), tokens + refill * rate)
    if tokens >= 1.0:
        return tokens - 1.0, at, 0.0
    return tokens, at, (1.0 - tokens) / rate


@dataclass
class _Bucket:
    tokens: float
    at: float


class LocalBuckets:
    """This process's buckets."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, name: str, rate: float, burst: int, now: float) -> float:
        with self._lock:
            bucket = self._buckets.setdefault(name, _Bucket(float(burst), now))
            bucket.tokens, bucket.at, wait = take_token(bucket.tokens, bucket.at, rate, burst, now)
            return wait


class SubmissionRate:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, buckets: Buckets | None = None
    ) -> None:
        self._clock = clock  # CLOCK_MONOTONIC: the same in every process of the machine
        self._buckets = buckets or LocalBuckets()

    def wait_s(self, caller: Caller) -> float:
        """0 when the caller may submit now (a token is taken), else seconds to wait."""
        if caller.limits is None or caller.name is None:
            return 0.0
        limits = caller.limits
        return self._buckets.take(
            caller.name, limits.submissions_per_second, limits.burst, self._clock()
        )

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
