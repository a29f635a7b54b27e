"""Figures (median, min, max of several runs), the machine they ran on, the Markdown table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class Figure:
    """One measured quantity: every run's value, reported as median (min-max). Its ratio is
    taken against `anchor` when set, else against the first figure of its section."""

    what: str
    unit: str
    samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    anchor: Figure | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def cell(self) -> str:
        lo, hi = min(self.samples), max(self.samples)
        return f"{_num(self.median)} ({_num(lo)}-{_num(hi)})"


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


@dataclass
class Table:
    """A titled Markdown table with notes under it."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += ["", *(f"- {n}" for n in self.notes)] if self.notes else []
        return "\n".join(lines) + "\n"


@dataclass
class Section:
    """A group of interleaved figures; the first is the baseline of the ratio column (unless a
    figure names its own anchor)."""

    title: str
    figures: list[Figure]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        rows = []
        for f in self.figures:
            base = f.anchor or self.figures[0]
            ratio = f.median / base.median if base.median else float("nan")
            rows.append([f.what, f.cell(), f.unit, f"{ratio:.2f}x"])
        columns = ["contender", "median (min-max)", "unit", "ratio"]
        return Table(self.title, columns, rows, self.notes).markdown()


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


def header() -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "## jobsuite benchmarks\n\n"
        f"- date: {now}\n- machine: {os.cpu_count()} cores, {cpu_model()}\n"
        f"- RabbitMQ {rabbitmq_version()}, Python {platform.python_version()}\n"
        "- each cell: median (min-max) of the runs; contenders interleaved run by run; "
        "ratio = median / first row's median\n"
    )


def anchored(figures: list[Figure]) -> list[Figure]:
    """The figures, each with the first as its ratio's anchor (a group within a section)."""
    for f in figures:
        f.anchor = figures[0]
    return figures
