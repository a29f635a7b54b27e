"""Figures (median, min, max of several runs), the machine they ran on, the Markdown table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime

from benchmarks.trees import Tree


@dataclass
class Figure:
    """One measured quantity: every run's value, reported as median (min-max). Its ratio is
    taken against `anchor` when set, else against the first figure of its section.
    `baseline` is the same quantity measured in the baseline tree, in the same runs."""

    what: str
    unit: str
    samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    anchor: Figure | None = None
    baseline: Figure | None = None

    def of(self, tree: Tree) -> Figure:
        """Where a run in `tree` adds its sample: this figure, or its baseline twin."""
        if not tree.is_baseline:
            return self
        if self.baseline is None:
            self.baseline = Figure(tree.named(self.what), self.unit, [], self.higher_is_better)
        return self.baseline

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def cell(self) -> str:
        return f"{num(self.median)} ({num(self.low)}-{num(self.high)})"


def num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


@dataclass
class Table:
    """A titled Markdown table with notes under it; `figures` are the measurements behind its
    rows that have a baseline twin (for the change table)."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "---|" * len(self.columns))
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines).rstrip("\n") + "\n"


@dataclass
class Section:
    """A group of interleaved figures; the first is the anchor of the ratio column (unless a
    figure names its own). A figure measured in the baseline too is followed by its
    "(baseline)" row, whose ratio is taken against the baseline's twin of the anchor."""

    title: str
    figures: list[Figure]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        rows = []
        for f in self.figures:
            anchor = f.anchor or self.figures[0]
            rows.append(_row(f, anchor))
            if f.baseline and f.baseline.samples:
                twin = anchor.baseline
                rows.append(_row(f.baseline, twin if twin and twin.samples else anchor))
        columns = ["contender", "median (min-max)", "unit", "ratio"]
        return Table(self.title, columns, rows, self.notes).markdown()


RATIO_UNIT = "x"  # a figure that is itself a ratio (of two contenders in one process)


def _row(figure: Figure, anchor: Figure) -> list[str]:
    if figure.unit == RATIO_UNIT:  # against another figure it would mean nothing
        return [figure.what, figure.cell(), figure.unit, "-"]
    ratio = figure.median / anchor.median if anchor.median else float("nan")
    return [figure.what, figure.cell(), figure.unit, f"{ratio:.2f}x"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rabbitmq_version() -> str:
    try:
        out = subprocess.run(
            ["rabbitmqctl", "version"], capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (rabbitmqctl not available)"


def header(baseline: str = "", scratch: str = "") -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        "## jobsuite benchmarks\n\n"
        f"- date: {now}\n- machine: {os.cpu_count()} cores, {cpu_model()}\n"
        f"- RabbitMQ {rabbitmq_version()}, Python {platform.python_version()}\n"
        "- each cell: median (min-max) of the runs; contenders interleaved run by run; "
        "ratio = median / first row's median\n"
    )
    if scratch:
        text += (
            f"- files (blob stores, state, logs): under {scratch} (BENCH_TMPDIR), deleted"
            " when the run ends, not between measurements\n"
        )
    if baseline:
        text += (
            f'- baseline: {baseline}; a "(baseline)" row is the same jobsuite figure measured'
            " by the baseline tree's own code (its processes start in that tree), interleaved"
            " with this tree's run by run; its ratio is against the baseline's own first row\n"
        )
    return text


def anchored(figures: list[Figure]) -> list[Figure]:
    """The figures, each with the first as its ratio's anchor (a group within a section)."""
    for f in figures:
        f.anchor = figures[0]
    return figures
