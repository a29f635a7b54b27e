"""A PostgreSQL URL fit for a log line: its password masked (no psycopg needed)."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit


def masked(url: str) -> str:
    """`url` with its password (in the user part or a `password=` option) as `***`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<a malformed URL>"
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))
