"""Counts in words for people: `1 message`, `2 messages`, never `1 messages`."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` with `noun` in the right number; `plural` when adding "s" is wrong."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
