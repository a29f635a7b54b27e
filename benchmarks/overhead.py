"""Per-job overhead of the worker runner: tiny no-op jobs drained by 2 processes of
(a) the jobsuite runner with a handler that does nothing (benchmarks/noop_worker.py; a tree
without it runs tests/support/scripted_worker.py, empty params) of each tree,
(b) raw pika (prefetch 1, manual ack) on the same quorum queue, (b') plain pika sending the
runner's messages (two confirmed events per job, one wait, then the ack), (c) Celery (acks late,
prefetch multiplier 1, 2 prefork processes) on its own quorum queue of the same broker, the
durability of ours, and (d) the same Celery on its default classic queue.

The queue is filled first, then the workers start; the rate and the CPU per job are taken
from the moment 20% of the jobs are gone (start-up absorbed) until the queue is empty. CPU
per job is the steadier figure on a shared machine: wall-clock rates move with whatever else
runs."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING

from benchmarks.celery_run import celery_available, celery_workers
from benchmarks.drain import (
    SCRIPTED_WORKER,
    Drained,
    drain,
    fill_noop_jobs,
    run_once,
    stop,
)
from benchmarks.stats import Figure, Section
from benchmarks.trees import CURRENT, Tree, Trees
from tests.support.broker import TestBroker
from tests.support.processes import service_env

if TYPE_CHECKING:
    from benchmarks.celery_app import QueueType

NOOP_WORKER = "benchmarks.noop_worker"
TMPFS = Path("/dev/shm")
Measure = Callable[[TestBroker, int], Drained]


def jobsuite_runner(tree: Tree, module: str, **env: str) -> Measure:
    """Two processes of `tree`'s no-op (or scripted) worker: the real runner."""

    def contender(broker: TestBroker, jobs: int) -> Drained:
        queue = fill_noop_jobs(broker, jobs)
        procs = [tree.start(module, env=service_env(broker.settings, **env)) for _ in range(2)]
        try:
            return drain(broker, queue, jobs, procs)
        finally:
            stop(procs)

    return contender


def _on_tmpfs(broker: TestBroker, jobs: int) -> Drained:
    with TemporaryDirectory(dir=TMPFS, prefix="jobsuite-bench-") as folder:
        return jobsuite_runner(CURRENT, NOOP_WORKER, BLOB_DIR=folder)(broker, jobs)


def plain_pika(module: str, **env_extra: str) -> Measure:
    """Two processes of a plain pika worker of this tree (`raw_pika_worker`,
    `pika_events_worker`), `env_extra` in their environment."""

    def contender(broker: TestBroker, jobs: int) -> Drained:
        queue = fill_noop_jobs(broker, jobs)
        env = service_env(broker.settings, **env_extra)
        procs = [CURRENT.start(module, env=env) for _ in range(2)]
        try:
            return drain(broker, queue, jobs, procs)
        finally:
            stop(procs)

    return contender


def celery(queue_type: QueueType) -> Measure:
    def contender(broker: TestBroker, jobs: int) -> Drained:
        with celery_workers(broker, queue_type, jobs, "noop") as (queue, procs):
            return drain(broker, queue, jobs, procs)

    return contender


class _Contender:
    """A rate figure and a CPU-per-job figure filled by the same runs."""

    def __init__(
        self,
        what: str,
        measure: Measure,
        cpu_anchor: Figure | None = None,
        broker_anchor: Figure | None = None,
    ) -> None:
        self.rate = Figure(what, "jobs/s")
        self.cpu = Figure(f"{what}: CPU per job", "ms", higher_is_better=False)
        self.cpu.anchor = cpu_anchor
        self.broker = Figure(f"{what}: broker CPU per job", "ms", higher_is_better=False)
        self.broker.anchor = broker_anchor
        self.measure = measure

    def run(self, jobs: int, tree: Tree = CURRENT) -> None:
        drained = run_once(self.measure, jobs)
        self.rate.of(tree).samples.append(drained.rate)
        self.cpu.of(tree).samples.append(drained.cpu_ms)
        line = f"  {tree.named(self.rate.what)}: {drained.rate:.0f} jobs/s, "
        line += f"{drained.cpu_ms:.2f} ms CPU per job"
        if not math.isnan(drained.broker_cpu_ms):  # a local node was seen
            self.broker.of(tree).samples.append(drained.broker_cpu_ms)
            line += f", broker {drained.broker_cpu_ms:.2f} ms"
        print(line, file=sys.stderr, flush=True)


def overhead_section(trees: Trees, jobs: int, runs: int) -> Section:
    workers = trees.find("no-op worker", lambda t: t.module(NOOP_WORKER, SCRIPTED_WORKER))
    pika = _Contender(
        "raw pika (2 processes, prefetch 1, manual ack)", plain_pika("benchmarks.raw_pika_worker")
    )
    pika.cpu.anchor = pika.cpu  # every CPU ratio is against raw pika's
    pika.broker.anchor = pika.broker
    runner_what = "jobsuite runner (2 processes, no-op handler)"
    runner = _Contender(runner_what, jobsuite_runner(CURRENT, NOOP_WORKER), pika.cpu, pika.broker)
    # Every job writes its manifest: a new folder and a new file in the blob store, whose
    # cost on a disk file system moves with what else writes to it; on tmpfs the runner's own
    # cost shows.
    tmpfs = TMPFS.is_dir()
    on_tmpfs = _Contender(f"{runner_what}, blob store on tmpfs", _on_tmpfs, pika.cpu, pika.broker)
    # Jobs at once per process (prefetch 1 each): the latency of a job's confirms overlaps.
    slots = _Contender(
        "jobsuite runner (2 processes x WORKER_CONCURRENCY=4, no-op handler)",
        jobsuite_runner(CURRENT, NOOP_WORKER, WORKER_CONCURRENCY="4"),
        pika.cpu,
        pika.broker,
    )
    # The runner's messages through plain pika: what the guarantees cost with none of the
    # runner's own work, the floor of any runner on this protocol.
    events = _Contender(
        "plain pika with the runner's messages (2 processes, 2 confirmed events per job, then"
        " the ack)",
        plain_pika("benchmarks.pika_events_worker"),
        pika.cpu,
        pika.broker,
    )
    # One event per job instead of two: the most that merging `job.started` into
    # `job.succeeded` (a change of the event contract, not of the runner) could give.
    one_event = _Contender(
        "plain pika, 1 confirmed event per job (2 processes; not the contract: what merging"
        " job.started into job.succeeded would give)",
        plain_pika("benchmarks.pika_events_worker", BENCH_EVENTS_PER_JOB="1"),
        pika.cpu,
        pika.broker,
    )
    others = [pika, events, one_event, slots]
    notes = [
        f"{jobs} no-op jobs per run; rate and CPU over the last 80% of the queue",
        "jobsuite per job: decode + checks, job.started and job.succeeded events with"
        " publisher confirms (one wait per job), the manifest (a new folder and file in the"
        " blob store), one JSON log line, ack",
        "CPU per job: user + system time of the worker processes (and their children) over"
        " the same window / jobs; every CPU ratio is against raw pika's",
        *workers.notes,
    ]
    if tmpfs:
        others.append(on_tmpfs)
    if celery_available():
        others += [
            _Contender(
                "Celery (prefork 2, acks late, prefetch x1, quorum queue)",
                celery("quorum"),
                pika.cpu,
                pika.broker,
            ),
            _Contender(
                "Celery (same, its default classic queue)",
                celery("classic"),
                pika.cpu,
                pika.broker,
            ),
        ]
    else:
        notes.append("Celery not installed: left out")
    for run in range(runs):
        for tree, module in workers.in_turn(run):
            runner.measure = jobsuite_runner(tree, module)
            runner.run(jobs, tree)
        for contender in others:
            contender.run(jobs)
    figures = [runner.rate, *(c.rate for c in others), runner.cpu, pika.cpu]
    figures += [c.cpu for c in others if c is not pika]
    contenders = [runner, *others]
    if all(c.broker.samples for c in contenders):
        figures += [runner.broker, pika.broker, *(c.broker for c in others if c is not pika)]
        notes.append(
            "broker CPU per job: the local RabbitMQ node's (beam.smp) user + system time over"
            " the same window / jobs, everything it did then; every broker ratio is against"
            " raw pika's. Worker and broker share the machine's cores: when the workers keep"
            " them busy (WORKER_CONCURRENCY=4), the rate is bound by cores x 1000 / (worker +"
            " broker CPU ms per job)"
        )
    return Section("Per-job overhead of the worker runner", figures, notes)
