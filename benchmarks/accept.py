"""Gateway accept rate: small render jobs POSTed to the real gateway process by concurrent
HTTP clients (benchmarks/gateway_bench.py), against the gateway's publisher alone in this
process (no HTTP) and a plain pika publisher, one confirmed publish per message, on the
same broker and the same kind of queue (quorum `jobs.render`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from benchmarks.gateway_bench import measure_direct, post_many
from benchmarks.namespace import bench_namespace
from benchmarks.procmem import cpu_seconds
from benchmarks.stats import Figure, Section, anchored
from shared.config import Settings
from shared.messages import Job
from tests.support.gateway import start_gateway

BODY = {"template": "document"}
WARM_UP = 50


def through_gateway(jobs: int, clients: int, cpu: tuple[Figure, Figure]) -> float:
    """Accepted jobs/s; CPU ms per accepted job of the gateway and of this (client) process
    go to `cpu`."""
    with bench_namespace() as ns:
        gateway = start_gateway(ns.spawn, ns.settings)
        post_many(gateway.url, WARM_UP, clients)
        pid = gateway.process.pid
        before = cpu_seconds(pid), time.process_time(), time.perf_counter()
        accepted = post_many(gateway.url, jobs, clients)
        after = cpu_seconds(pid), time.process_time(), time.perf_counter()
        for figure, start, end in zip(cpu, before, after, strict=False):
            figure.samples.append((end - start) * 1000 / accepted)
        return accepted / (after[2] - before[2])


def plain_pika(jobs: int, _clients: int) -> float:
    """One thread, one channel in confirm mode: publish, wait for the confirm, next."""
    with bench_namespace() as ns:
        for _ in range(WARM_UP):
            ns.broker.publish_job(Job(type="render", params=BODY))
        started = time.perf_counter()
        for _ in range(jobs):
            ns.broker.publish_job(Job(type="render", params=BODY))
        return jobs / (time.perf_counter() - started)


def publisher_alone(jobs: int, clients: int) -> float:
    return measure_direct(f"pool-{Settings().gateway_publishers}", jobs, clients)


def accept_section(runs: int, jobs: int, clients: int) -> Section:
    cpu = (
        Figure("gateway process: CPU per accepted job", "ms", higher_is_better=False),
        Figure("HTTP client (bench process): CPU per accepted job", "ms", higher_is_better=False),
    )
    anchored(list(cpu))
    contenders: dict[str, Callable[[int, int], float]] = {
        f"gateway, HTTP POST /jobs/render ({clients} client threads)": (
            lambda j, c: through_gateway(j, c, cpu)
        ),
        f"gateway's publisher alone, no HTTP ({clients} threads)": publisher_alone,
        "plain pika, 1 thread, one confirmed publish per message": plain_pika,
    }
    figures = [Figure(name, "jobs/s") for name in contenders]
    for _ in range(runs):
        for figure, measure in zip(figures, contenders.values(), strict=True):
            figure.samples.append(measure(jobs, clients))
            print(
                f"  accept {figure.what}: {figure.samples[-1]:.0f}/s", file=sys.stderr, flush=True
            )
    notes = [
        f"{jobs} jobs per run after {WARM_UP} to warm up, {runs} runs per contender,"
        " interleaved, each in a fresh namespace",
        "the gateway publishes two confirmed messages per job (the job and its job.submitted"
        f" event) from a pool of {Settings().gateway_publishers} publisher connections"
        " (GATEWAY_PUBLISHERS) and logs a line per job; plain pika publishes the job only",
        "CPU per job x jobs/s / 1000 = cores busy: the gateway is one uvicorn process (one"
        " core at most for Python code) and the client threads share this process's GIL",
    ]
    return Section("Gateway accept rate", [*figures, *cpu], notes)
