"""The sink's HTML pages for a person: the list (search, unread, delete) and one message
(tabs for its HTML, text, headers, raw source and attachments). Server-rendered, every value
escaped; links are relative, so the view works behind a path prefix. The one script
(static/mailview.js) only adds live updates and confirmations: without it, everything works.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode

from shared.words import count, human_size

TABS = (
    ("html", "HTML"),
    ("text", "Text"),
    ("headers", "Headers"),
    ("raw", "Raw"),
    ("attachments", "Attachments"),
)
SEARCH_HELP = 'from:, to:, subject:, is:unread, is:read, has:attachment, "a phrase", -word'


def _document(title: str, body: str, root: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{root}static/mailview.css">
<script src="{root}static/mailview.js" defer></script></head>
<body>
{body}
</body>
</html>
"""


def messages_page(summaries: Sequence[dict[str, object]], *, query: str = "", total: int) -> str:
    """The list, newest first: `summaries` are those matching `query`, of `total` held."""
    unread = sum(1 for s in summaries if not s.get("read"))
    shown = count(len(summaries), "message")
    held = f"{shown}, {unread} unread" + (f" (of {total})" if query else "")
    empty = "No message matches." if query else "No messages yet."
    rows = "\n".join(_row(s) for s in summaries) or (
        f'<tr><td colspan="5" class="muted">{empty}</td></tr>'
    )
    body = f"""<header>
<h1><a href="./">mailsink</a></h1>
<p id="count" class="muted" aria-live="polite">{escape(held)}</p>
</header>
<form class="search" role="search" method="get" action="./">
<label for="q">Search</label>
<input id="q" name="q" type="search" value="{escape(query)}" aria-describedby="search-help">
<button type="submit">Search</button>
{'<a href="./">Clear</a>' if query else ""}
<p id="search-help" class="muted">{escape(SEARCH_HELP)}</p>
</form>
<form class="danger" method="post" action="actions/delete-all" data-confirm="Delete every message?">
<button type="submit">Delete all</button>
<span class="muted">JSON: <a href="messages">/messages</a></span>
</form>
<table id="messages">
<caption class="visually-hidden">Messages, newest first</caption>
<thead><tr><th scope="col">Received</th><th scope="col">From</th><th scope="col">To</th>
<th scope="col">Subject</th><th scope="col">Attachments</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
"""
    return _document(f"mailsink: {held}", body, "")


def _row(s: dict[str, object]) -> str:
    key = quote(str(s["id"]), safe="")
    to = ", ".join(str(a) for a in _list(s["to"]) + _list(s["cc"]))
    names = _list(s["attachments"])
    subject = escape(str(s["subject"])) or '<span class="muted">(no subject)</span>'
    unread = not s.get("read")
    marker = '<span class="badge">unread</span> ' if unread else ""
    return (
        f'<tr class="{"unread" if unread else "read"}" data-id="{escape(str(s["id"]))}">'
        f"<td>{escape(when(str(s['received'])))}</td><td>{escape(str(s['from']))}</td>"
        f"<td>{escape(to)}</td>"
        f'<td>{marker}<a href="view/{key}">{subject}</a></td>'
        f"<td>{escape(', '.join(str(n) for n in names))}</td></tr>"
    )


def message_page(detail: dict[str, object], raw: bytes, tab: str) -> str:
    """One message, on `tab` (one of TABS)."""
    key = quote(str(detail["id"]), safe="")
    subject = str(detail["subject"]) or "(no subject)"
    facts = [
        ("From", str(detail["from"])),
        ("To", ", ".join(map(str, _list(detail["to"])))),
        ("Cc", ", ".join(map(str, _list(detail["cc"])))),
        ("Envelope recipients", ", ".join(map(str, _list(detail["envelope_to"])))),
        ("Date", str(detail["date"])),
        ("Received", when(str(detail["received"]))),
        ("Message-ID", str(detail["message_id"])),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{escape(value)}</dd>" for name, value in facts if value)
    tabs = "".join(_tab(name, label, tab, detail) for name, label in TABS)
    body = f"""<nav><a href="../">← All messages</a></nav>
<h1>{escape(subject)}</h1>
<dl class="facts">{rows}</dl>
<form class="danger" method="post" action="../actions/delete" data-confirm="Delete this message?">
<input type="hidden" name="id" value="{escape(str(detail["id"]))}">
<button type="submit">Delete</button>
<a href="../messages/{key}/raw" download="{key}.eml">Download .eml</a>
</form>
<nav aria-label="Parts of the message"><ul class="tabs">{tabs}</ul></nav>
<section id="panel" aria-label="{escape(dict(TABS)[tab])}">
{_panel(tab, key, detail, raw)}
</section>
"""
    return _document(f"{subject} · mailsink", body, "../")


def _tab(name: str, label: str, current: str, detail: dict[str, object]) -> str:
    if name == "attachments":
        label = f"{label} ({len(_list(detail['attachments']))})"
    here = ' aria-current="page"' if name == current else ""
    return f'<li><a href="?{urlencode({"tab": name})}"{here}>{escape(label)}</a></li>'


def _panel(tab: str, key: str, detail: dict[str, object], raw: bytes) -> str:
    if tab == "html":
        if detail["html"] is None:
            return '<p class="muted">This message has no HTML part.</p>'
        # Sandboxed (no script, an origin of its own), and the part itself is served with a
        # CSP that loads nothing from anywhere: remote images and trackers stay blocked.
        return (
            f'<iframe id="html-body" sandbox="" referrerpolicy="no-referrer" '
            f'title="The message as HTML" src="../messages/{key}/html"></iframe>'
        )
    if tab == "text":
        if detail["text"] is None:
            return '<p class="muted">This message has no text part.</p>'
        return f'<pre class="wrap">{escape(str(detail["text"]))}</pre>'
    if tab == "headers":
        pairs = [p for p in _list(detail["headers"]) if isinstance(p, list) and len(p) == 2]
        rows = "".join(
            f'<tr><th scope="row">{escape(str(n))}</th><td>{escape(str(v))}</td></tr>'
            for n, v in pairs
        )
        return f'<table class="headers"><tbody>{rows}</tbody></table>'
    if tab == "raw":
        return f'<pre class="wrap">{escape(raw.decode("utf-8", "replace"))}</pre>'
    return _attachments(key, _list(detail["attachments"]))


def _attachments(key: str, parts: list[object]) -> str:
    if not parts:
        return '<p class="muted">No attachments.</p>'
    rows = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        name = str(part["name"])
        href = f"../messages/{key}/attachments/{quote(name, safe='')}"
        rows.append(
            f'<tr><td><a href="{href}" download>{escape(name)}</a></td>'
            f"<td>{escape(str(part['content_type']))}</td>"
            f'<td class="number">{escape(human_size(int(part["size"])))}</td></tr>'
        )
    return (
        '<table class="attachments"><thead><tr><th scope="col">Name</th>'
        '<th scope="col">Type</th><th scope="col">Size</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def when(iso: str) -> str:
    """An ISO time as people read it: `2026-12-02 10:51:49 UTC`."""
    try:
        moment = datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []
