"""The change against the baseline: every figure measured in both trees, current median
against baseline median, flagged when it is worse by more than LIMIT_PCT beyond the spread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from benchmarks.stats import Figure, Section, Table

LIMIT_PCT = 10.0


@dataclass(frozen=True)
class Change:
    section: str
    figure: Figure  # this tree's; `figure.baseline` the baseline tree's

    @property
    def base(self) -> Figure:
        assert self.figure.baseline is not None
        return self.figure.baseline

    @property
    def change_pct(self) -> float:
        """Signed change of the median from the baseline to now, in %."""
        return (self.figure.median - self.base.median) / self.base.median * 100

    @property
    def worse_pct(self) -> float:
        """How much worse now is, in % (negative: better): lower jobs/s, higher ms or MiB."""
        return -self.change_pct if self.figure.higher_is_better else self.change_pct

    @property
    def ranges_overlap(self) -> bool:
        now, base = self.figure, self.base
        return now.low <= base.high and base.low <= now.high

    @property
    def flagged(self) -> bool:
        return self.worse_pct > LIMIT_PCT and not self.ranges_overlap

    def row(self) -> list[str]:
        verdict = "**yes**" if self.flagged else "no"
        shown = round(self.worse_pct, 1)  # as printed: +0.0 % is the same, not worse
        direction = "worse" if shown > 0 else "better" if shown < 0 else "same"
        return [
            f"{self.section}: {self.figure.what}",
            self.figure.unit,
            self.figure.cell(),
            self.base.cell(),
            f"{self.change_pct:+.1f} % ({direction})",
            verdict,
        ]


def changes(parts: Mapping[str, Section | Table]) -> list[Change]:
    """Every figure of every section that has baseline samples, the worst first."""
    found = [
        Change(name, f)
        for name, part in parts.items()
        for f in part.figures
        if f.samples and f.baseline and f.baseline.samples and f.baseline.median
    ]
    return sorted(found, key=lambda c: c.worse_pct, reverse=True)


def change_table(parts: Mapping[str, Section | Table]) -> Table:
    found = changes(parts)
    flagged = sum(c.flagged for c in found)
    limit = f"{LIMIT_PCT:g}"
    verdict = f"worse by > {limit} % beyond the spread"
    columns = ["figure", "unit", "current", "baseline", "change of the median", verdict]
    notes = [
        f"{flagged} of {len(found)} figures worse by more than {limit} % beyond the spread",
        "current, baseline: median (min-max) of the same interleaved runs; change = (current"
        " median - baseline median) / baseline median; worse = lower for jobs/s, higher for"
        " times and memory",
        f"worse by more than {limit} % beyond the spread: the current median is worse than the"
        f" baseline median by more than {limit} % AND the current and baseline min-max ranges"
        " do not overlap (every current run worse than every baseline run); a figure of a"
        " single run (memory) has no spread, its range is its value",
        "figures of one tree only (the competitors, a helper the baseline lacks, the py-spy"
        " profile) are not compared; the sections' notes say which",
    ]
    rows = [c.row() for c in found]
    return Table("Change against the baseline", columns, rows, notes)
