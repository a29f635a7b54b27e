"""`jobsuite bench`: load a live deployment through its gateway and report what it did.

Closed loop: `--concurrency` client threads each submit a job, follow it with GET /jobs/{id}
until it is finished, then submit the next, until `--jobs` were submitted. Latency is the
job record's finished_at - submitted_at (the client's own clock when the record lacks them);
throughput is finished jobs / wall time. Exit code 1 when any job failed or was refused.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import console, fail, readable_errors
from cli.gateway_client import TERMINAL, GatewayClient, GatewayError, describe

_POLL_S = 0.05
BENCH_TYPES = ("resize", "render")


@dataclass
class Outcome:
    job_id: str | None
    status: str  # succeeded | failed | dead | refused | timeout
    latency_s: float
    error: str = ""


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def sample_image(size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A JPEG with some detail in it (a flat colour would make resizing unrealistically cheap)."""
    image = Image.radial_gradient("L").resize(size).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _submitter(kind: str, file: Path | None, width: int) -> Callable[[GatewayClient], Any]:
    if kind == "resize":
        data = file.read_bytes() if file else sample_image()
        name = file.name if file else "bench.jpg"
        form = {"width": str(width)}

        def resize(gw: GatewayClient) -> Any:
            files = {"file": (name, data, "application/octet-stream")}
            return gw.call("POST", "/jobs/resize", files=files, data=form)

        return resize
    body = {"template": "document", "data": {"title": "jobsuite bench", "blocks": ["Hello."]}}
    return lambda gw: gw.call("POST", "/jobs/render", json=body)


def _latency(record: dict[str, Any], client_s: float) -> float:
    try:
        submitted = datetime.fromisoformat(record["submitted_at"])
        finished = datetime.fromisoformat(record["finished_at"])
    except (KeyError, TypeError, ValueError):
        return client_s
    return (finished - submitted).total_seconds()


def _one_job(gw: GatewayClient, submit: Callable[[GatewayClient], Any], timeout: float) -> Outcome:
    started = time.monotonic()
    response = submit(gw)
    if response.status_code != 202:
        return Outcome(None, "refused", 0.0, describe(response))
    job_id = str(response.json()["id"])
    while time.monotonic() - started < timeout:
        answer = gw.call("GET", f"/jobs/{job_id}")
        if answer.status_code == 200 and answer.json().get("status") in TERMINAL:
            record = answer.json()
            error = (record.get("error") or {}).get("message", "")
            return Outcome(
                job_id, record["status"], _latency(record, time.monotonic() - started), error
            )
        time.sleep(_POLL_S)
    return Outcome(job_id, "timeout", time.monotonic() - started, f"no outcome in {timeout:.0f} s")


def run_load(
    gw: GatewayClient,
    submit: Callable[[GatewayClient], Any],
    jobs: int,
    concurrency: int,
    timeout: float,
    on_done: Callable[[], None] = lambda: None,
) -> tuple[Tally, float]:
    tally = Tally()
    counter = iter(range(jobs))
    counter_lock = threading.Lock()

    def client() -> None:
        while True:
            with counter_lock:
                if next(counter, None) is None:
                    return
            try:
                tally.add(_one_job(gw, submit, timeout))
            except GatewayError as e:
                tally.add(Outcome(None, "refused", 0.0, str(e)))
            on_done()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="bench") as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    return tally, time.perf_counter() - started


def report(tally: Tally, wall_s: float, kind: str, concurrency: int) -> Table:
    done = [o for o in tally.outcomes if o.status == "succeeded"]
    table = Table(title=f"jobsuite bench: {kind}, concurrency {concurrency}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("jobs", str(len(tally.outcomes)))
    table.add_row("succeeded", str(len(done)))
    table.add_row("failed", str(len(tally.outcomes) - len(done)))
    table.add_row("wall time", f"{wall_s:.2f} s")
    table.add_row("throughput", f"{len(done) / wall_s:.1f} jobs/s" if wall_s else "-")
    latencies = [o.latency_s * 1000 for o in done]
    for pct in (50, 95, 99):
        value = f"{percentile(latencies, pct):.0f} ms" if latencies else "-"
        table.add_row(f"latency p{pct}", value)
    return table


@readable_errors
def bench(
    type: Annotated[str, typer.Option("--type", help="resize or render")] = "resize",
    jobs: Annotated[int, typer.Option(min=1, help="how many jobs to submit")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, help="jobs in flight at once")] = 8,
    file: Annotated[
        Path | None, typer.Option(help="the image for resize jobs", show_default="a 1600x1200 JPEG")
    ] = None,
    width: Annotated[int, typer.Option(min=1, help="resize jobs' target width")] = 800,
    timeout: Annotated[float, typer.Option(help="seconds one job may take")] = 300.0,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="gateway URL", show_default="GATEWAY_URL")
    ] = None,
) -> None:
    """Submit jobs through the gateway and print throughput, latency percentiles, failures."""
    if type not in BENCH_TYPES:
        raise fail(f"--type must be one of {', '.join(BENCH_TYPES)}, not {type!r}", 2)
    if file is not None and not file.is_file():
        raise fail(f"no such file: {file}", 2)
    gw = GatewayClient(gateway)
    submit = _submitter(type, file, width)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"{type} jobs", total=jobs)
        tally, wall_s = run_load(
            gw, submit, jobs, concurrency, timeout, lambda: progress.advance(task)
        )
    console.print(report(tally, wall_s, type, concurrency))
    failures = [o for o in tally.outcomes if o.status != "succeeded"]
    for o in failures[:10]:
        console.print(f"failed: {o.job_id or '-'} {o.status}: {o.error}", highlight=False)
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
