"""Jobs through a running gateway with a bounded number in flight, outcomes from the events.

Client threads POST while fewer than `window` jobs are unfinished, each request built once and
its bytes sent again and again (`lean_http`); this thread reads the namespace's events (an
exclusive queue bound to its fanout, `EventStream`) and frees a slot on each job's first
`job.succeeded` or `job.failed`. Latency = the event's `at` minus the client's clock just
before its POST (one machine, one clock)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.lean_http import Connection, Prepared, prepare
from cli.bench_cmds import percentile, sample_image
from tests.support.broker import EventWatcher, TestBroker

Submit = Callable[[str, Mapping[str, str] | None], Prepared]
"""A kind of request: its bytes for a gateway's base URL and headers (the API key)."""
TERMINAL = {"job.succeeded", "job.failed"}
_WAIT_S = 0.05  # the longest wait for events: pika returns as soon as some have come


class EventStream(EventWatcher):
    """The tests' EventWatcher (the same exclusive queue on the `events` fanout), with the
    events pushed by the broker (basic.consume, no acks) instead of fetched with basic.get, a
    round trip per event and one per empty look every 5 ms: here, on the cores the
    services share, that cost the client about 20 ms of CPU per CPU-heavy job and the broker
    more, and held back the scaling measured. `run_load` waits for the next events rather
    than sleeping 5 ms between looks: a slot is freed as its job ends, and the client wakes
    once per batch of events (heavy jobs: 1.5-1.7 against 2.0-2.2 ms of its CPU per job)."""

    def __init__(self, broker: TestBroker) -> None:
        super().__init__(broker)
        broker.channel.basic_consume(self.queue, self._on_event, auto_ack=True)

    def _on_event(self, _channel: Any, _method: Any, _properties: Any, body: bytes) -> None:
        self.seen.append(json.loads(body))

    def poll(self) -> list[dict[str, Any]]:
        """The events so far, those the broker has pushed meanwhile taken in."""
        self.broker.connection.process_data_events(time_limit=0)
        return self.seen


@dataclass
class LoadResult:
    submitted: dict[str, float] = field(default_factory=dict)  # job id -> epoch s of POST
    succeeded: dict[str, float] = field(default_factory=dict)  # job id -> epoch s of event
    failed: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)

    def rate(self) -> float:
        """Succeeded jobs per second, from the first POST to the last success."""
        span = max(self.succeeded.values()) - min(self.submitted.values())
        return len(self.succeeded) / span if span > 0 else float("nan")

    def latency_ms(self, pct: float) -> float:
        ms = [(self.succeeded[j] - t) * 1000 for j, t in self.submitted.items()]
        return percentile(ms, pct)

    def check(self) -> None:
        if self.failed or self.refused or len(self.succeeded) != len(self.submitted):
            raise RuntimeError(
                f"{len(self.failed)} failed, {len(self.refused)} refused"
                f" ({self.refused[:3]}), {len(self.succeeded)}/{len(self.submitted)} succeeded"
            )


def resize_request(size: tuple[int, int] = (640, 480), width: int = 160) -> Submit:
    data = sample_image(size)

    def submit(url: str, headers: Mapping[str, str] | None) -> Prepared:
        files = {"file": ("bench.jpg", data, "image/jpeg")}
        form = {"width": str(width)}
        return prepare(url, "POST", "/jobs/resize", headers, files=files, data=form)

    return submit


HEAVY_IMAGE = (800, 600)
HEAVY_SIZES = ("640", "480", "320", "160")


def heavy_request() -> Submit:
    """800x600 JPEG to four WebP sizes: the work, not the bookkeeping, dominates."""
    data = sample_image(HEAVY_IMAGE)

    def submit(url: str, headers: Mapping[str, str] | None) -> Prepared:
        files = {"file": ("bench.jpg", data, "image/jpeg")}
        form = {"sizes": list(HEAVY_SIZES), "format": "webp"}
        return prepare(url, "POST", "/jobs/resize", headers, files=files, data=form)

    return submit


def render_request() -> Submit:
    body = {"template": "document", "data": {"title": "jobsuite bench", "blocks": ["Hello."]}}
    return lambda url, headers: prepare(url, "POST", "/jobs/render", headers, json=body)


def mail_request() -> Submit:
    body = {"to": ["bench@example.com"], "subject": "jobsuite bench", "text": "Hello."}
    return lambda url, headers: prepare(url, "POST", "/jobs/mail", headers, json=body)


def run_load(
    url: str,
    watcher: EventStream,
    submits: Sequence[Submit],
    jobs: int,
    window: int,
    timeout: float = 600,
    headers: dict[str, str] | None = None,  # the API key: tests/support/keys.bearer
) -> LoadResult:
    """Submit `jobs` jobs (cycling through `submits`) and wait for every outcome."""
    result = LoadResult()
    slots = threading.Semaphore(window)
    lock = threading.Lock()
    counter = iter(range(jobs))
    requests = [submit(url, headers) for submit in submits]

    def client() -> None:
        with Connection(url) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                slots.acquire()
                started = time.time()
                response = http.send(requests[i % len(requests)])
                with lock:
                    if response.status_code == 202:
                        result.submitted[response.json()["id"]] = started
                    else:
                        result.refused.append(f"{response.status_code} {response.text[:200]}")
                        slots.release()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(min(window, jobs))]
    for t in threads:
        t.start()
    _follow(watcher, result, slots, threads, time.monotonic() + timeout)
    return result


def _follow(
    watcher: EventStream,
    result: LoadResult,
    slots: threading.Semaphore,
    threads: list[threading.Thread],
    deadline: float,
) -> None:
    seen = len(watcher.seen)
    while True:
        events = watcher.poll()
        for event in events[seen:]:
            job_id = event["job_id"]
            done = job_id in result.succeeded or job_id in result.failed
            if event["event"] not in TERMINAL or done:
                continue
            if event["event"] == "job.succeeded":
                result.succeeded[job_id] = datetime.fromisoformat(event["at"]).timestamp()
            else:
                result.failed.add(job_id)
            slots.release()
        seen = len(events)
        clients_done = not any(t.is_alive() for t in threads)
        if clients_done and len(result.succeeded) + len(result.failed) >= len(result.submitted):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no outcome for some jobs in time ({len(result.succeeded)} done)")
        watcher.broker.connection.process_data_events(time_limit=_WAIT_S)
