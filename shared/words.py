"""Numbers in words for people: `1 message`, `2 messages`, never `1 messages`; `1.5 kB`."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` with `noun` in the right number; `plural` when adding "s" is wrong."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def human_size(size: int) -> str:
    """`512 B`, `1.5 kB`, `2.0 MB` (powers of 1000, as mail clients and browsers show them)."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} GB"
