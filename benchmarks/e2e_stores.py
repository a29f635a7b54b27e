"""What the distributed stores cost (issue 15): CPU-heavy resize jobs end to end through a
real gateway and two resizers, with the blobs in a folder and the state in SQLite (the
defaults) against the blobs in an S3 bucket and the state in PostgreSQL. The S3 server is
moto's (tests/support/s3.py), on the same cores as everything else, so the figure is an upper
bound on the cost; PostgreSQL is the local server, a fresh database per run. Also the resize
handler's own time (its `job.succeeded` duration), where the object store's round trips show.
This tree only: the stores are a deployment choice, not a change to measure."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from statistics import median
from tempfile import TemporaryDirectory
from typing import TypedDict

from benchmarks.load import HEAVY_IMAGE, HEAVY_SIZES, EventStream, heavy_request, run_load
from benchmarks.namespace import bench_namespace
from benchmarks.stats import Figure, Section, anchored
from tests.support.gateway import start_gateway
from tests.support.keys import bearer
from tests.support.postgres import fresh_database
from tests.support.s3 import S3Server

RESIZERS = 2
WARM_UP = 8
MODES = ("folder + SQLite", "S3 + PostgreSQL")


class StoresEnv(TypedDict, total=False):
    """A service's variables for the distributed stores (S3Env's and STATE_URL), none of
    them for the defaults. Typed so that `**env` fills only the spawner's environment,
    never its other keywords (settings_override, timeout…)."""

    BLOB_STORE: str
    S3_ENDPOINT_URL: str
    AWS_ACCESS_KEY_ID: str
    AWS_SECRET_ACCESS_KEY: str
    AWS_REGION: str
    STATE_URL: str


@contextmanager
def _stores(mode: str, s3: S3Server) -> Iterator[StoresEnv]:
    """The environment that puts the services on `mode`'s stores (none: the defaults)."""
    if mode == MODES[0]:
        yield {}
        return
    with fresh_database() as url:
        yield {**s3.env(s3.bucket()), "STATE_URL": url}


def one_run(mode: str, s3: S3Server, jobs: int, window: int) -> tuple[float, float]:
    """(jobs/s, median handler ms) of one run on `mode`'s stores."""
    with bench_namespace(prefix="stores") as ns, _stores(mode, s3) as env:
        settings = replace(ns.settings, state_url=env.get("STATE_URL", ""))
        workers = [ns.spawn("services.resizer", **env) for _ in range(RESIZERS)]
        gateway = start_gateway(ns.spawn, settings, **env)
        for worker in workers:
            worker.wait_logged("consuming")
        watcher = EventStream(ns.broker)
        submit, key = [heavy_request()], bearer(gateway.key)
        run_load(gateway.url, watcher, submit, WARM_UP, window, headers=key).check()
        warmed = len(watcher.seen)
        result = run_load(gateway.url, watcher, submit, jobs, window, headers=key)
        result.check()
        handler_ms = [
            e["duration_ms"]
            for e in watcher.seen[warmed:]
            if e["event"] == "job.succeeded" and e.get("duration_ms") is not None
        ]
        return result.rate(), median(handler_ms)


def stores_section(runs: int, jobs: int, window: int) -> Section:
    rates = anchored([Figure(f"{m}: throughput", "jobs/s") for m in MODES])
    handler = anchored([Figure(f"{m}: resize handler", "ms", [], False) for m in MODES])
    with TemporaryDirectory() as tmp:
        s3 = S3Server(Path(tmp) / "moto.log")
        try:
            for turn in range(runs):
                order = MODES if turn % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    rate, ms = one_run(mode, s3, jobs, window)
                    i = MODES.index(mode)
                    rates[i].samples.append(rate)
                    handler[i].samples.append(ms)
                    print(f"  stores {mode}: {rate:.1f} jobs/s, handler {ms:.0f} ms",
                          file=sys.stderr, flush=True)  # fmt: skip
        finally:
            s3.stop()
    notes = [
        f"{jobs} jobs per run ({HEAVY_IMAGE[0]}x{HEAVY_IMAGE[1]} JPEG to {len(HEAVY_SIZES)}"
        " WebP sizes) after"
        f" {WARM_UP} to warm up, at most {window} in flight, {RESIZERS} resizer processes and"
        f" a gateway; {runs} runs per setting, the order alternating",
        "S3: moto's server (in memory, pure Python) on the same cores, so its own CPU counts"
        " against the S3 row: a real S3 or MinIO elsewhere costs the services less;"
        " PostgreSQL: the local server, a fresh database per run",
        "handler = the median `duration_ms` of the run's `job.succeeded` events: read the"
        " input, make the four sizes, write them and the manifest",
    ]
    return Section(
        "The distributed stores: S3 + PostgreSQL against folder + SQLite",
        [*rates, *handler],
        notes,
    )
