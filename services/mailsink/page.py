"""The sink's HTML page for a person: the messages, newest first. Everything is escaped."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from shared.words import count

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }
td { vertical-align: top; }
th { background: #f4f4f4; }
.muted { color: #777; }
"""


def messages_page(summaries: list[dict[str, object]]) -> str:
    rows = "\n".join(_row(s) for s in summaries) or (
        '<tr><td colspan="5" class="muted">No messages yet.</td></tr>'
    )
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mailsink: {count(len(summaries), "message")}</title>
<style>{_STYLE}</style></head>
<body>
<h1>mailsink</h1>
<p class="muted">{count(len(summaries), "message")}. JSON: <a href="messages">/messages</a></p>
<table>
<tr><th>Received</th><th>From</th><th>To</th><th>Subject</th><th>Attachments</th></tr>
{rows}
</table>
</body>
</html>
"""


def _row(s: dict[str, object]) -> str:
    key = quote(str(s["id"]), safe="")
    to = ", ".join(str(a) for a in _list(s["to"]) + _list(s["cc"]))
    links = " ".join(
        f'<a href="messages/{key}/attachments/{quote(str(name), safe="")}">{escape(str(name))}</a>'
        for name in _list(s["attachments"])
    )
    subject = escape(str(s["subject"])) or '<span class="muted">(no subject)</span>'
    return (
        f"<tr><td>{escape(str(s['received']))}</td><td>{escape(str(s['from']))}</td>"
        f"<td>{escape(to)}</td>"
        f'<td><a href="messages/{key}">{subject}</a> '
        f'<a class="muted" href="messages/{key}/raw">raw</a></td><td>{links}</td></tr>'
    )


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []
