"""Listings that stay readable in an 80-column terminal.

A rich Table squeezes every column to fit the terminal, so at 80 columns a job list became
`sta…`, `res…` and an error one word a line. Here every column is as wide as its widest
cell and never wraps (a job id is always whole, on one line), columns are two spaces apart
with no borders, and a row's long free text (an error) goes on its own indented line under
the row, wrapped at words to the terminal's width.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

GAP = "  "
NOTE_INDENT = 4


@dataclass(frozen=True)
class Row:
    cells: Sequence[str | Text]
    note: str = ""  # printed under the row, wrapped: an error, a reason


def print_listing(
    console: Console, headers: Sequence[str], rows: Sequence[Row], *, right: Collection[int] = ()
) -> None:
    """The header, a rule, then each row (and its note); `right`: columns aligned right.
    A line wider than the terminal is printed whole (the terminal wraps it), never cut."""
    cells = [[Text(c) if isinstance(c, str) else c for c in row.cells] for row in rows]
    widths = [len(h) for h in headers]
    for line in cells:
        widths = [max(w, c.cell_len) for w, c in zip(widths, line, strict=True)]

    def line_of(parts: Sequence[Text], style: str = "") -> Text:
        padded = []
        for i, (part, width) in enumerate(zip(parts, widths, strict=True)):
            pad = " " * (width - part.cell_len)
            last = i == len(parts) - 1
            padded.append(Text(pad) + part if i in right else part + ("" if last else pad))
        text = Text(GAP).join(padded)
        text.stylize(style)
        return text

    def whole(text: Text) -> None:
        console.print(text, soft_wrap=True, highlight=False)

    whole(line_of([Text(h) for h in headers], "bold"))
    whole(Text("─" * (sum(widths) + len(GAP) * (len(widths) - 1)), style="dim"))
    for row, line in zip(rows, cells, strict=True):
        whole(line_of(line))
        if row.note:
            console.print(Padding(Text(row.note), (0, 0, 0, NOTE_INDENT)), highlight=False)


def short_time(value: str | None, now: datetime | None = None) -> str:
    """Local time: `HH:MM:SS` today, the date before (`--json` has the exact moment)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value).astimezone()
    today = (now or datetime.now().astimezone()).date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d")


def short_duration(duration_ms: float | None) -> str:
    """At most 6 characters: `850 ms`, `12.3 s`, `523 s`."""
    if duration_ms is None:
        return ""
    if duration_ms < 1000:
        return f"{duration_ms:.0f} ms"
    seconds = duration_ms / 1000
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


def error_line(error: dict[str, Any] | None) -> str:
    """`kind: message` of a job's error, or ""."""
    return f"{error['kind']}: {error['message']}" if error else ""
