"""Waiting before trying again: exponential back-off with full jitter."""

from __future__ import annotations

import random


def compute_backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """A random wait in [0, min(cap, base * 2**attempt)] seconds: retries of many clients
    spread out instead of arriving together (AWS's "full jitter")."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt)))
