"""The bench's tables: a figure's ratio against its anchor, and none for a figure that is
itself a ratio (the PDF handler over plain reportlab, taken within one process)."""

from __future__ import annotations

from benchmarks.stats import RATIO_UNIT, Figure, Section


def test_a_ratio_figure_has_no_ratio_column_and_the_others_theirs() -> None:
    handler = Figure("handler", "ms CPU", [60.0, 62.0, 64.0], higher_is_better=False)
    plain = Figure("plain", "ms CPU", [54.0, 55.0, 56.0], higher_is_better=False)
    paired = Figure("handler over plain", RATIO_UNIT, [1.04, 1.09, 1.10])
    table = Section("PDF", [handler, plain, paired]).markdown()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "| handler | 62.0 (60.0-64.0) | ms CPU | 1.00x |",
        "| plain | 55.0 (54.0-56.0) | ms CPU | 0.89x |",
        "| handler over plain | 1.09 (1.04-1.10) | x | - |",
    ]
