"""W3C Trace Context (https://www.w3.org/TR/trace-context/): one trace id per pipeline.

The gateway takes a caller's `traceparent` header or starts a trace, and answers with it; the
trace id travels in the job itself (`Job.trace_id`, so retries, follow-ups and replays from
the dead letters keep it) and, for tools that read only headers, in the job message's
`traceparent` header. Every event about the job carries it, and every log line.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRACE_ID_PATTERN = r"^[0-9a-f]{32}$"
HEADER = "traceparent"
# version-traceid-parentid-flags; a future version may append fields after a dash.
_TRACEPARENT = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?$"
)
_SAMPLED = 0x01


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    parent_id: str
    sampled: bool = True

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceParent:
        """The same trace, from a new span: what a service passes on."""
        return TraceParent(self.trace_id, new_span_id(), self.sampled)


def parse(value: str | None) -> TraceParent | None:
    """The trace a `traceparent` header names, or None when it is absent or not valid (the
    receiver then starts a new trace, as the recommendation says; never an error)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id = match["version"], match["trace_id"], match["parent_id"]
    if version == "ff" or (version == "00" and match["rest"] is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return TraceParent(trace_id, parent_id, bool(int(match["flags"], 16) & _SAMPLED))


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def start(incoming: str | None) -> TraceParent:
    """The caller's trace continued from a new span, or a new trace."""
    parent = parse(incoming)
    if parent is None:
        return TraceParent(new_trace_id(), new_span_id())
    return parent.child()


def trace_id_of_job(job_id: str) -> str:
    """The trace id of a job that came without one (put straight on a queue): derived from
    its id, so every redelivery, retry and follow-up of it shares one trace."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:32]


def job_header(trace_id: str, span_id: str | None = None) -> dict[str, str]:
    """A job message's `traceparent` header: its trace, from the span that sends it (the
    gateway's `accept`, a worker's `settle`: shared/spans.py), or from a new one."""
    return {HEADER: TraceParent(trace_id, span_id or new_span_id()).header()}


def trace_id_for(job_id: str, own: str | None, headers: Mapping[str, Any]) -> str:
    """The trace a received job belongs to: its own, else its message's `traceparent` header
    (a job put on a queue by a traced client), else the one derived from its id."""
    if own:
        return own
    header = headers.get(HEADER)
    if isinstance(header, bytes):
        header = header.decode("ascii", "replace")
    parent = parse(header) if isinstance(header, str) else None
    return parent.trace_id if parent else trace_id_of_job(job_id)
