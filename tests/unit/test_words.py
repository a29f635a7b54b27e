"""Numbers in words for people (shared/words.py)."""

from __future__ import annotations

import pytest

from shared.words import count, human_size


def test_counts_take_the_right_number() -> None:
    assert [count(1, "message"), count(2, "message"), count(0, "body", "bodies")] == [
        "1 message", "2 messages", "0 bodies"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (2_057, "2.1 kB"), (2_000_000, "2.0 MB"),
     (3_400_000_000, "3.4 GB")],
)  # fmt: skip
def test_sizes_in_powers_of_1000(size: int, shown: str) -> None:
    assert human_size(size) == shown
