"""Live updates for a web page (the mail view, the audit console): every change, fanned out
to each open server-sent-events stream. A change is told from any thread (the mail sink's
SMTP side stores from a worker thread, the audit records from its consumer thread); each
stream waits on its own asyncio queue on the event loop that serves it. No polling: a change
wakes the streams at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator

MEDIA_TYPE = "text/event-stream"
# Never cached; not buffered by a proxy in front (nginx reads X-Accel-Buffering).
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
HEARTBEAT_S = 15.0  # a comment line now and then, so proxies keep an idle stream open
_END = ("end", None)


class Changes:
    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._streams: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._closed = False

    def tell(self, what: str, key: str | None) -> None:
        """From any thread: `what` happened to message `key` (None: to all of them)."""
        self._fan_out((what, key))

    def close(self) -> None:
        """End every stream (the server is stopping: uvicorn waits for open responses)."""
        with self._lock:
            self._closed = True
        self._fan_out(_END)

    def _fan_out(self, change: tuple[str, str | None]) -> None:
        with self._lock:
            streams = list(self._streams)
        for loop, queue in streams:
            with contextlib.suppress(RuntimeError):  # that stream's loop has closed: it is gone
                loop.call_soon_threadsafe(queue.put_nowait, change)

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events, one per change, until the server stops or the client goes."""
        queue: asyncio.Queue = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            if self._closed:
                return
            self._streams.append(entry)
        try:
            yield "retry: 2000\n\n"  # a dropped stream is reopened after 2 s by the browser
            while True:
                try:
                    what, key = await asyncio.wait_for(queue.get(), self.heartbeat_s)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                if (what, key) == _END:
                    return
                yield f"event: {what}\ndata: {json.dumps({'id': key})}\n\n"
        finally:
            with self._lock:
                self._streams.remove(entry)
