"""End-to-end resize through the gateway, 1 against 2 resizer processes: a gateway and the
resizers as real processes (of each tree) in a fresh namespace per run; small JPEGs POSTed
with a bounded number in flight (benchmarks/load.py); jobs/s and latency from POST to
`job.succeeded`."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.load import (
    HEAVY_IMAGE,
    HEAVY_SIZES,
    EventStream,
    LoadResult,
    Submit,
    heavy_request,
    resize_request,
    run_load,
)
from benchmarks.namespace import bench_namespace
from benchmarks.procmem import broker_pid, cpu_seconds, node_cpu_seconds
from benchmarks.stats import Figure, Section, anchored
from benchmarks.trees import CURRENT, Tree, Trees
from cli.bench_cmds import sample_image
from tests.support.gateway import start_gateway
from tests.support.keys import bearer

PERCENTILES = (50, 95, 99)
COUNTS = (1, 2)
WARM_UP = 20
IMAGE = (640, 480)
IMAGE_KIB = len(sample_image(IMAGE)) // 1024


@dataclass
class Run:
    load: LoadResult
    gateway_cpu_ms: float  # per job
    resizer_cpu_ms: float  # per job, all resizers together
    client_cpu_ms: float  # per job: this process (the HTTP client threads, the event reader)
    broker_cpu_ms: float  # per job: the local RabbitMQ node; nan when there is none to see

    def cores_allow(self, cores: int) -> float:
        """Jobs/s the machine's cores would give at this run's CPU per job of every party
        (gateway, resizers, load client, broker), fully used: the most any number of resizers
        could drain with these costs; nan without the broker's share."""
        total_ms = self.gateway_cpu_ms + self.resizer_cpu_ms + self.client_cpu_ms
        return cores * 1000 / (total_ms + self.broker_cpu_ms)


def one_run(tree: Tree, resizers: int, jobs: int, window: int, request: Submit) -> Run:
    with bench_namespace(tree) as ns:
        workers = [ns.spawn("services.resizer") for _ in range(resizers)]
        gateway = start_gateway(ns.spawn, ns.settings)
        for worker in workers:
            worker.wait_logged("consuming")
        watcher = EventStream(ns.broker)
        submit = [request]
        key = bearer(gateway.key)
        run_load(gateway.url, watcher, submit, WARM_UP, window, headers=key).check()
        broker = broker_pid()
        before = [cpu_seconds(p.pid) for p in (gateway.process, *workers)]
        broker_before = node_cpu_seconds(broker)
        client_before = time.process_time()
        result = run_load(gateway.url, watcher, submit, jobs, window, headers=key)
        client_ms = (time.process_time() - client_before) * 1000 / jobs
        broker_ms = (node_cpu_seconds(broker) - broker_before) * 1000 / jobs
        after = [cpu_seconds(p.pid) for p in (gateway.process, *workers)]
        result.check()
        used = [(a - b) * 1000 / jobs for a, b in zip(after, before, strict=True)]
        return Run(result, used[0], sum(used[1:]), client_ms, broker_ms)


def work_alone(processes: int, jobs: int) -> float:
    """Jobs/s of the CPU-heavy job's work with no jobsuite around it (the resize handler in
    `processes` processes of benchmarks/heavy_probe.py at once, `jobs` each): what this
    machine's cores give that work, the ceiling of the end-to-end scaling."""
    start_at = time.time() + 5  # past every process's imports and warm-up
    args = ("benchmarks.heavy_probe", str(jobs), f"{start_at:.3f}")
    with ThreadPoolExecutor(processes) as pool:
        outs = list(pool.map(lambda _: CURRENT.output(*args), range(processes)))
    spans = [json.loads(out) for out in outs]
    wall = max(s["ended"] for s in spans) - min(s["started"] for s in spans)
    return processes * jobs / wall


def seen(figures: list[Figure]) -> list[Figure]:
    """The figures, or none when they were never measured (no local broker to see)."""
    return figures if all(f.samples for f in figures) else []


def _allowed(kind: str, one_resizer: Figure, cores: int) -> Figure:
    """The throughput the cores allow at the 2-resizer runs' CPU per job, anchored to the
    1-resizer throughput: its ratio is the best scaling those costs leave room for."""
    what = f"2 resizer(s): {kind}throughput the {cores} cores allow (at every party's CPU per job)"
    return Figure(what, "jobs/s", [], True, anchor=one_resizer)


def _pair(what: str, unit: str, higher_is_better: bool = False) -> list[Figure]:
    """One figure per resizer count, the 2-resizer one anchored to the 1-resizer one."""
    return anchored([Figure(f"{n} resizer(s): {what}", unit, [], higher_is_better) for n in COUNTS])


@dataclass
class CpuFigures:
    """Where a kind of job's CPU went, per resizer count: the gateway, the resizers, the load
    client, the broker."""

    gateway: list[Figure]
    resizers: list[Figure]
    client: list[Figure]
    broker: list[Figure]

    @classmethod
    def named(cls, kind: str) -> CpuFigures:
        return cls(*(_pair(f"{kind}{part} CPU per job", "ms") for part in _CPU_PARTS))

    def record(self, i: int, tree: Tree, run: Run) -> None:
        self.gateway[i].of(tree).samples.append(run.gateway_cpu_ms)
        self.resizers[i].of(tree).samples.append(run.resizer_cpu_ms)
        self.client[i].of(tree).samples.append(run.client_cpu_ms)
        if run.broker_cpu_ms == run.broker_cpu_ms:  # not nan: a local node was seen
            self.broker[i].of(tree).samples.append(run.broker_cpu_ms)

    def figures(self) -> list[Figure]:
        return [*self.gateway, *self.resizers, *self.client, *seen(self.broker)]


_CPU_PARTS = ("gateway", "resizer", "load client", "broker")


def e2e_section(trees: Trees, runs: int, jobs: int, window: int, heavy_jobs: int) -> Section:
    rates = _pair("throughput", "jobs/s", higher_is_better=True)
    heavy = _pair("CPU-heavy jobs: throughput", "jobs/s", higher_is_better=True)
    ceiling = _pair("CPU-heavy work alone (the handler, no jobsuite): throughput", "jobs/s", True)
    alone_jobs = max(1, heavy_jobs // 2)  # per process
    latency = {pct: _pair(f"latency p{pct}", "ms") for pct in PERCENTILES}
    cpu, heavy_cpu = CpuFigures.named(""), CpuFigures.named("CPU-heavy jobs: ")
    cores = os.cpu_count() or 1
    allowed = _allowed("", rates[0], cores)
    heavy_allowed = _allowed("CPU-heavy jobs: ", heavy[0], cores)
    for turn in range(runs):
        for i, n in enumerate(COUNTS):
            for tree in trees.in_turn(turn):
                run = one_run(tree, n, jobs, window, resize_request(IMAGE))
                rates[i].of(tree).samples.append(run.load.rate())
                for pct, figures in latency.items():
                    figures[i].of(tree).samples.append(run.load.latency_ms(pct))
                cpu.record(i, tree, run)
                _record_allowed(allowed, n, tree, run, cores)
                line = tree.named(f"  e2e {n} resizer(s)") + f": {run.load.rate():.1f} jobs/s"
                p50 = run.load.latency_ms(50)
                print(f"{line}, p50 {p50:.0f} ms", file=sys.stderr, flush=True)
        for i, n in enumerate(COUNTS):
            for tree in trees.in_turn(turn):
                run = one_run(tree, n, heavy_jobs, window, heavy_request())
                rate = run.load.rate()
                heavy[i].of(tree).samples.append(rate)
                heavy_cpu.record(i, tree, run)
                _record_allowed(heavy_allowed, n, tree, run, cores)
                line = tree.named(f"  e2e CPU-heavy, {n} resizer(s)") + f": {rate:.1f} jobs/s"
                print(line, file=sys.stderr, flush=True)
        for i, n in enumerate(COUNTS):  # the machine's, measured once per turn (this tree)
            rate = work_alone(n, alone_jobs)
            ceiling[i].of(CURRENT).samples.append(rate)
            print(f"  CPU-heavy work alone, {n} process(es): {rate:.1f} jobs/s", file=sys.stderr)
    notes = [
        f"{jobs} jobs per run ({IMAGE[0]}x{IMAGE[1]} JPEG, {IMAGE_KIB} KiB, to 160 px wide)"
        f" after {WARM_UP} to warm up, at most {window} in flight; {runs} runs per setting,"
        " interleaved, each in a fresh namespace with fresh processes",
        "throughput = jobs / (last job.succeeded - first POST); the 2-resizer ratio is the"
        " scaling factor (2.00x = linear); latency = job.succeeded `at` - the client's clock"
        " before its POST, so it includes the upload and the wait in the queue (Little's law:"
        f" about {window} / throughput)",
        f"CPU-heavy jobs: {heavy_jobs} per run ({HEAVY_IMAGE[0]}x{HEAVY_IMAGE[1]} JPEG to"
        f" {len(HEAVY_SIZES)} WebP sizes), the same window and warm-up, interleaved with the"
        " tiny ones; the work, not the bookkeeping, dominates; their CPU per job as the tiny"
        " ones'",
        f"CPU-heavy work alone: the same job's work (the resize handler on a folder blob store,"
        f" benchmarks/heavy_probe.py) in 1 and in 2 processes at once, {alone_jobs}"
        " jobs each, no broker, gateway or client: its 2-process ratio is the ceiling this"
        " machine gives the CPU-heavy scaling (2.00x only if two busy processes run as fast as"
        " one), this tree only",
        "gateway, resizers, the HTTP client and this event reader share the machine's cores;"
        " CPU per job = user + system time of the process(es) during the run / jobs; the load"
        " client (this process: its HTTP client threads and the event reader) sends each"
        " request's bytes, built once by httpx, on kept-alive connections"
        " (benchmarks/lean_http.py); broker: the local RabbitMQ node's Erlang VM (beam.smp)"
        " over the same window, everything it did then (no row without a local node)",
        f"throughput the {cores} cores allow: {cores} x 1000 / the sum of every party's CPU ms"
        " per job in each 2-resizer run, the rate at which those costs would fill the cores;"
        " against the 1-resizer throughput its ratio is the most scaling they leave room for"
        " (no row without a local node)",
    ]
    figures = [*rates, *seen([allowed]), *(f for pct in PERCENTILES for f in latency[pct])]
    return Section(
        "End-to-end resize through the gateway, 1 vs 2 resizers",
        [*figures, *heavy, *seen([heavy_allowed]), *ceiling, *cpu.figures(), *heavy_cpu.figures()],
        notes,
    )


def _record_allowed(allowed: Figure, resizers: int, tree: Tree, run: Run, cores: int) -> None:
    rate = run.cores_allow(cores)
    if resizers == COUNTS[-1] and rate == rate:  # not nan: the broker's share was seen
        allowed.of(tree).samples.append(rate)
