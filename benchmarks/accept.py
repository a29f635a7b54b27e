"""Gateway accept rate: small render jobs POSTed to the real gateway process (of each tree) by
wrk over 32 keep-alive connections (benchmarks/wrk.py), against the gateway's publisher alone
(no HTTP; the tree's own gateway_bench in a process of its own) and a plain pika publisher,
one confirmed publish per message, on the same broker and the same kind of queue (quorum
`jobs.render`). This tree's gateway also runs with `AUTH_DISABLED=true` in the same runs,
interleaved: the cost of the API key check (issue 13) in jobs/s and gateway CPU per job; and
with GATEWAY_WORKERS=2 (two gateway processes on the one port), its CPU that of all its
processes."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

from benchmarks.drain import tree_cpu_seconds
from benchmarks.gateway_bench import post_many
from benchmarks.namespace import bench_namespace
from benchmarks.stats import Figure, Section, anchored
from benchmarks.trees import Tree, Trees
from benchmarks.wrk import post_for
from shared.config import Settings
from shared.messages import Job
from tests.support.gateway import start_gateway
from tests.support.keys import bearer
from tests.support.postgres import fresh_database

BODY = {"template": "document"}
WARM_UP = 50
GATEWAY_BENCH = ("benchmarks.gateway_bench", "tests.support.gateway_bench")  # new, old place


@dataclass(frozen=True)
class GatewayRun:
    """How a contender's gateway runs: its key check off, its processes (GATEWAY_WORKERS, which
    a tree from before it ignores)."""

    auth_disabled: bool = False
    workers: int = 1
    postgres: bool = False  # STATE_URL: a fresh database on the local PostgreSQL


def through_gateway(
    tree: Tree, seconds: float, clients: int, cpu: Sequence[Figure], how: GatewayRun = GatewayRun()
) -> float:
    """Accepted jobs/s of `tree`'s gateway under wrk (`clients` connections for `seconds`), run
    as `how` says; CPU ms per accepted job of the gateway (all its processes) and (when `cpu`
    has a second figure) of wrk go to `cpu`. Accepted = jobs that reached the task queue."""
    with (
        bench_namespace(tree) as ns,
        fresh_database() if how.postgres else nullcontext("") as state_url,
    ):
        gateway = start_gateway(
            ns.spawn,
            replace(ns.settings, state_url=state_url),
            AUTH_DISABLED="true" if how.auth_disabled else "false",
            GATEWAY_WORKERS=str(how.workers),
            STATE_URL=state_url,
        )
        key = bearer(gateway.key)
        post_many(gateway.url, WARM_UP * how.workers, clients, key)
        queue = ns.broker.names.task_queue("render")
        queued = ns.broker.depth(queue)
        processes = [gateway.process.proc]  # with its workers, the tree below it
        before = tree_cpu_seconds(processes), _children_cpu()
        run = post_for(f"{gateway.url}/jobs/render", BODY, key, clients, seconds)
        after = tree_cpu_seconds(processes), _children_cpu()
        accepted = ns.broker.depth(queue) - queued
        if not accepted or run.socket_errors:
            raise RuntimeError(
                f"the gateway accepted {accepted} jobs ({run}):\n{gateway.process.tail()}"
            )
        for figure, start, end in zip(cpu, before, after, strict=False):
            figure.of(tree).samples.append((end - start) * 1000 / accepted)
        return accepted / run.seconds


def _children_cpu() -> float:
    """User + system seconds of this process's waited-for children (wrk, once it exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plain_pika(jobs: int) -> float:
    """One thread, one channel in confirm mode: publish, wait for the confirm, next."""
    with bench_namespace() as ns:
        for _ in range(WARM_UP):
            ns.broker.publish_job(Job(type="render", params=BODY))
        started = time.perf_counter()
        for _ in range(jobs):
            ns.broker.publish_job(Job(type="render", params=BODY))
        return jobs / (time.perf_counter() - started)


def publisher_alone(tree: Tree, module: str, jobs: int, clients: int) -> float:
    """`tree`'s gateway_bench --direct: its Publisher in a process of its own, read from the
    Markdown row it prints (`| pool-16 | 885 |`)."""
    design = f"pool-{Settings().gateway_publishers}"
    args = ["--direct", "--designs", design, "--jobs", str(jobs), "--clients", str(clients)]
    for line in tree.output(module, *args).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == design:
            return float(cells[1])
    raise RuntimeError(f"{module} in {tree.root} printed no rate for {design}")


def _record(figure: Figure, rate: float) -> None:
    figure.samples.append(rate)
    print(f"  accept {figure.what}: {rate:.0f}/s", file=sys.stderr, flush=True)


Gateway = tuple[Figure, Tree, Sequence[Figure], GatewayRun]  # figure, tree, CPU figures, how
WORKERS = 2  # GATEWAY_WORKERS of the contender that runs several: one per core here


def _gateways(
    run: int,
    trees: Trees,
    keyed: Figure,
    cpu: Sequence[Figure],
    this_trees: Sequence[tuple[Figure, Figure, GatewayRun]],
    every_tree: Sequence[tuple[Figure, Figure, GatewayRun]] = (),
) -> list[Gateway]:
    """This run's gateways in turn: each tree's with the key check and as `every_tree`
    (figure, CPU figure, how) says, and this tree's as `this_trees` says, measured here only;
    first every other run."""
    with_keys: list[Gateway] = [(keyed.of(t), t, cpu, GatewayRun()) for t in trees.in_turn(run)]
    with_keys += [(f.of(t), t, [c], how) for f, c, how in every_tree for t in trees.in_turn(run)]
    others: list[Gateway] = [(f, trees.current, [c], how) for f, c, how in this_trees]
    return [*with_keys, *others] if run % 2 == 0 else [*others, *with_keys]


def accept_section(trees: Trees, runs: int, jobs: int, clients: int, seconds: float) -> Section:
    tools = trees.find("gateway_bench", lambda t: t.module(*GATEWAY_BENCH))
    publishers = Settings().gateway_publishers
    cpu = (
        Figure("gateway process: CPU per accepted job", "ms", higher_is_better=False),
        Figure("wrk (the HTTP client): CPU per accepted job", "ms", higher_is_better=False),
    )
    open_cpu = Figure(
        "gateway process, AUTH_DISABLED=true: CPU per accepted job", "ms", higher_is_better=False
    )
    workers_cpu = Figure(
        f"gateway, GATEWAY_WORKERS={WORKERS}: CPU per accepted job (all its processes)",
        "ms",
        higher_is_better=False,
    )
    postgres_cpu = Figure(
        "gateway, STATE_URL=PostgreSQL: CPU per accepted job", "ms", higher_is_better=False
    )
    anchored([cpu[0], open_cpu, workers_cpu, postgres_cpu, cpu[1]])
    gateway = Figure(f"gateway, HTTP POST /jobs/render (wrk, {clients} connections)", "jobs/s")
    open_gateway = Figure("gateway, AUTH_DISABLED=true (no key check), same wrk", "jobs/s")
    workers = Figure(f"gateway, GATEWAY_WORKERS={WORKERS} (processes), same wrk", "jobs/s")
    this_trees = [
        (open_gateway, open_cpu, GatewayRun(auth_disabled=True)),
        (workers, workers_cpu, GatewayRun(workers=WORKERS)),
    ]
    postgres = Figure("gateway, STATE_URL=PostgreSQL (the local server), same wrk", "jobs/s")
    every_tree = [(postgres, postgres_cpu, GatewayRun(postgres=True))]
    alone = Figure(f"gateway's publisher alone, no HTTP ({clients} threads)", "jobs/s")
    pika = Figure("plain pika, 1 thread, one confirmed publish per message", "jobs/s")
    for run in range(runs):
        for figure, tree, figures, how in _gateways(
            run, trees, gateway, cpu, this_trees, every_tree
        ):
            _record(figure, through_gateway(tree, seconds, clients, figures, how))
        for tree, module in tools.in_turn(run):
            _record(alone.of(tree), publisher_alone(tree, module, jobs, clients))
        _record(pika, plain_pika(jobs))
    notes = [
        f"through the gateway: wrk (1 thread, {clients} keep-alive connections) for"
        f" {seconds:g} s after {WARM_UP} jobs to warm up; accepted = jobs that reached the task"
        " queue (the few in flight as wrk stops count, not their time); the publisher alone"
        f" and plain pika: {jobs} jobs per run; {runs} runs per contender, interleaved, each"
        " in a fresh namespace",
        "the gateway publishes two confirmed messages per job (the job and its job.submitted"
        f" event) from a pool of {publishers} publisher connections"
        " (GATEWAY_PUBLISHERS) and logs a line per job; plain pika publishes the job only",
        "AUTH_DISABLED=true: the same gateway and wrk (which still sends the key), every"
        " key check off: no Authorization lookup in the key store, no per-key token bucket;"
        " its ratio against the first row is the accept rate without / with the check",
        "CPU per job x jobs/s / 1000 = cores busy: the gateway is one uvicorn process (one"
        " core at most for Python code); wrk, in C, leaves it the other core",
        "STATE_URL=PostgreSQL: the ledger and the API keys in a fresh database on the local"
        " server (on the same cores; its CPU is not in the gateway's), each tree's gateway",
        f"GATEWAY_WORKERS={WORKERS}: this tree's gateway as {WORKERS} uvicorn processes on"
        " the one port (the kernel gives each connection to one), sharing the key's rate"
        " table and the metrics files; its CPU is all its processes'",
        *tools.notes,
    ]
    if trees.baseline:
        notes.append(
            f"the publisher alone runs a pool of {publishers} (this tree's GATEWAY_PUBLISHERS"
            " default) in both trees; each tree's gateway runs with its own default"
        )
    figures = [gateway, open_gateway, workers, postgres, alone, pika, cpu[0], open_cpu]
    figures += [workers_cpu, postgres_cpu, cpu[1]]
    return Section("Gateway accept rate", figures, notes)
