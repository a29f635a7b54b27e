"""Per-job overhead of the worker runner: tiny no-op jobs drained by 2 processes of
(a) the jobsuite runner (tests/support/scripted_worker.py, empty params) of each tree,
(b) raw pika (prefetch 1, manual ack) on the same quorum queue, (c) Celery (acks late,
prefetch multiplier 1, 2 prefork processes) on its own quorum queue of the same broker.

The queue is filled first, then the workers start; the rate is taken from the moment 20% of
the jobs are gone (start-up absorbed) until the queue is empty."""

from __future__ import annotations

import sys

from benchmarks.drain import (
    SCRIPTED_WORKER,
    Contender,
    drain_rate,
    fill,
    fill_noop_jobs,
    run_once,
    stop,
)
from benchmarks.stats import Figure, Section
from benchmarks.trees import CURRENT, Tree, Trees
from tests.support.broker import AMQP_URL, TestBroker
from tests.support.processes import service_env


def jobsuite_runner(tree: Tree, module: str) -> Contender:
    """Two processes of `tree`'s scripted worker (the real runner, a no-op handler)."""

    def contender(broker: TestBroker, jobs: int) -> float:
        queue = fill_noop_jobs(broker, jobs)
        env = service_env(broker.settings)
        procs = [tree.start(module, env=env) for _ in range(2)]
        try:
            return drain_rate(broker, queue, jobs, procs)
        finally:
            stop(procs)

    return contender


def raw_pika(broker: TestBroker, jobs: int) -> float:
    queue = fill_noop_jobs(broker, jobs)
    env = service_env(broker.settings)
    procs = [CURRENT.start("benchmarks.raw_pika_worker", env=env) for _ in range(2)]
    try:
        return drain_rate(broker, queue, jobs, procs)
    finally:
        stop(procs)


def celery(broker: TestBroker, jobs: int) -> float:
    from benchmarks.celery_app import make_app, queue_name

    namespace = broker.settings.namespace
    queue = queue_name(namespace)
    app = make_app(namespace, AMQP_URL)
    try:
        with app.producer_or_acquire() as producer:
            fill(broker, queue, jobs, lambda _i: app.send_task("noop", producer=producer))
        args = ["-A", "benchmarks.celery_app", "worker", "-c", "2", "-P", "prefork", "-Q", queue]
        args += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
        args += ["--without-heartbeat"]
        procs = [CURRENT.start("celery", *args, env=service_env(broker.settings))]
        try:
            return drain_rate(broker, queue, jobs, procs)
        finally:
            stop(procs)
    finally:
        channel = broker.connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
        app.close()


def celery_available() -> bool:
    try:
        import celery as _celery  # noqa: F401
    except ImportError:
        return False
    return True


def _measure(figure: Figure, contender: Contender, jobs: int) -> None:
    figure.samples.append(run_once(contender, jobs))
    print(f"  {figure.what}: {figure.samples[-1]:.0f} jobs/s", file=sys.stderr, flush=True)


def overhead_section(trees: Trees, jobs: int, runs: int) -> Section:
    workers = trees.find("scripted worker", lambda t: t.module(SCRIPTED_WORKER))
    runner = Figure("jobsuite runner (2 processes)", "jobs/s")
    others: list[tuple[Figure, Contender]] = [
        (Figure("raw pika (2 processes, prefetch 1, manual ack)", "jobs/s"), raw_pika)
    ]
    notes = [
        f"{jobs} no-op jobs per run; rate over the last 80% of the queue",
        "jobsuite per job: decode + validate, job.started and job.succeeded events with"
        " publisher confirms (one wait per job), output + manifest files, JSON log lines, ack",
        *workers.notes,
    ]
    if celery_available():
        others.append((Figure("Celery (prefork 2, acks late, prefetch x1)", "jobs/s"), celery))
    else:
        notes.append("Celery not installed: left out")
    for run in range(runs):
        for tree, module in workers.in_turn(run):
            _measure(runner.of(tree), jobsuite_runner(tree, module), jobs)
        for figure, contender in others:
            _measure(figure, contender, jobs)
    return Section(
        "Per-job overhead of the worker runner", [runner, *(f for f, _ in others)], notes
    )
