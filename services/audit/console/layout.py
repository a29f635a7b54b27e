"""The console's page frame (navigation, its one stylesheet and script) and values as people
read them: times, durations, sizes, statuses. Every value escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

SECTIONS = (
    ("jobs", "Jobs", ""),
    ("dead", "Dead letters", "console/dead"),
    ("workers", "Workers", "console/workers"),
    ("queues", "Queues", "console/queues"),
)


def document(title: str, section: str, body: str, root: str) -> str:
    """A whole page: `root` leads back to the console's root from the page's own path."""
    nav = "".join(
        f'<li><a href="{root}{path or "./"}"'
        f"{' aria-current=page' if name == section else ''}>{label}</a></li>"
        for name, label, path in SECTIONS
    )
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · jobsuite console</title>
<link rel="stylesheet" href="{root}console/static/console.css">
<script src="{root}console/static/console.js" defer></script></head>
<body data-root="{root}">
<header><a class="brand" href="{root}./">jobsuite</a>
<nav aria-label="Console"><ul>{nav}<li><a href="{root}docs">API</a></li></ul></nav></header>
<main>
{body}
</main>
</body>
</html>
"""


def status_badge(status: str) -> str:
    return f'<span class="status status-{escape(status)}">{escape(status)}</span>'


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    return f'<time datetime="{utc.isoformat()}">{utc.strftime("%Y-%m-%d %H:%M:%S")}</time>'


def when_text(iso: object) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(str(iso)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(iso)


def duration(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
