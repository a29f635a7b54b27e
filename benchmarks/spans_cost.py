"""`python -m benchmarks.spans_cost`: what the spans cost a worker per job (timeit), spans
off (OTEL_EXPORTER_OTLP_ENDPOINT unset: NO_SPANS) against no span calls at all, and spans
on (the SDK, its exporter replaced by one that drops everything) for scale.

Per job a worker makes the calls of shared/worker: `waited` (queue wait), `job("handler")`
and `job("settle")` as context managers, and `current_span_id()` for each message it
publishes (a follow-up)."""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shared.messages import Job
from shared.spans import NO_SPANS, LiveSpans, Spans, current_span_id

HEADERS = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_job(spans: Spans, job: Job) -> Callable[[], object]:
    def run() -> object:
        spans.waited(job, HEADERS)
        with spans.job("handler", job, HEADERS) as span:
            span.set("outcome", "succeeded")
        with spans.job("settle", job, HEADERS) as span:
            parent = current_span_id()
            span.set("outcome", "succeeded")
        return parent

    return run


def nothing(job: Job) -> Callable[[], object]:
    def run() -> object:
        return job

    return run


def best_ns(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


def main(argv: list[str]) -> None:
    number = int(argv[0]) if argv else 200_000
    job = Job(type="resize", trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    live = LiveSpans("bench", _Dropped())
    base = best_ns(nothing(job), number)
    off = best_ns(per_job(NO_SPANS, job), number)
    on = best_ns(per_job(live, job), max(number // 20, 1000))
    live.close()
    print("| per job | ns |")
    print("|---|---:|")
    print(f"| no span calls | {base:.0f} |")
    print(f"| spans off (NO_SPANS) | {off:.0f} |")
    print(f"| spans off, added | {off - base:.0f} |")
    print(f"| spans on (SDK, export dropped) | {on:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
