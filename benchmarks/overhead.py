"""Per-job overhead of the worker runner: tiny no-op jobs drained by 2 processes of
(a) the jobsuite runner (tests/support/scripted_worker.py, empty params), (b) raw pika
(prefetch 1, manual ack) on the same quorum queue, (c) Celery (acks late, prefetch
multiplier 1, 2 prefork processes) on its own quorum queue of the same broker.

The queue is filled first, then the workers start; the rate is taken from the moment 20% of
the jobs are gone (start-up absorbed) until the queue is empty."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pika

from benchmarks.namespace import bench_namespace
from benchmarks.stats import Figure, Section
from shared.messages import Job, encode
from tests.support.broker import AMQP_URL, TestBroker
from tests.support.processes import ROOT, service_env

Contender = Callable[[TestBroker, int], float]
_POLL_S = 0.02
_TIMEOUT_S = 300.0


def _start(
    module_args: list[str], env: dict[str, str], cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *module_args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _fill(broker: TestBroker, queue: str, jobs: int, publish: Callable[[int], None]) -> None:
    for i in range(jobs):
        publish(i)
    broker.wait_until(lambda: broker.depth(queue) >= jobs, 60, f"{jobs} jobs in {queue}")


def _drain_rate(
    broker: TestBroker, queue: str, jobs: int, procs: list[subprocess.Popen[bytes]]
) -> float:
    """Jobs/s from the moment a fifth of the queue is gone until it is empty."""
    deadline = time.monotonic() + _TIMEOUT_S
    mark = jobs - jobs // 5
    t0, left_at_t0 = 0.0, 0
    while True:
        depth = broker.depth(queue)
        now = time.perf_counter()
        if not t0 and depth <= mark:
            t0, left_at_t0 = now, depth
        if depth == 0:
            return left_at_t0 / (now - t0) if t0 and now > t0 else float("nan")
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker of {queue} exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{queue} not drained within {_TIMEOUT_S}s ({depth} left)")
        broker.connection.sleep(_POLL_S)


def _jobs_raw(broker: TestBroker) -> Callable[[int], None]:
    """Publish job bodies without a confirm each (the fill is not what is measured)."""
    channel = broker.connection.channel()
    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, type="resize")

    def publish(_i: int) -> None:
        job = Job(type="resize", params={})
        channel.basic_publish(broker.names.jobs_exchange, "resize", encode(job), props)

    return publish


def jobsuite_runner(broker: TestBroker, jobs: int, checkout: Path = ROOT) -> float:
    queue = broker.names.task_queue("resize")
    _fill(broker, queue, jobs, _jobs_raw(broker))
    env = service_env(broker.settings)
    procs = [_start(["-m", "tests.support.scripted_worker"], env, checkout) for _ in range(2)]
    try:
        return _drain_rate(broker, queue, jobs, procs)
    finally:
        _stop(procs)


def baseline_runner(checkout: Path) -> Contender:
    """The runner of another checkout (an earlier commit), for before/after in one run."""
    return lambda broker, jobs: jobsuite_runner(broker, jobs, checkout)


def raw_pika(broker: TestBroker, jobs: int) -> float:
    queue = broker.names.task_queue("resize")
    _fill(broker, queue, jobs, _jobs_raw(broker))
    env = service_env(broker.settings)
    procs = [_start(["-m", "benchmarks.raw_pika_worker"], env) for _ in range(2)]
    try:
        return _drain_rate(broker, queue, jobs, procs)
    finally:
        _stop(procs)


def celery(broker: TestBroker, jobs: int) -> float:
    from benchmarks.celery_app import make_app, queue_name

    namespace = broker.settings.namespace
    queue = queue_name(namespace)
    app = make_app(namespace, AMQP_URL)
    try:
        with app.producer_or_acquire() as producer:
            _fill(broker, queue, jobs, lambda _i: app.send_task("noop", producer=producer))
        args = ["-m", "celery", "-A", "benchmarks.celery_app", "worker", "-c", "2"]
        args += ["-P", "prefork", "-Q", queue, "--loglevel", "WARNING"]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        procs = [_start(args, service_env(broker.settings))]
        try:
            return _drain_rate(broker, queue, jobs, procs)
        finally:
            _stop(procs)
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


def run_once(contender: Contender, jobs: int) -> float:
    """One contender in a fresh namespace and blob folder, deleted afterwards."""
    with bench_namespace() as ns:
        return contender(ns.broker, jobs)


def overhead_section(jobs: int, runs: int) -> Section:
    contenders: list[tuple[str, Contender]] = [
        ("jobsuite runner (2 processes)", jobsuite_runner),
        ("raw pika (2 processes, prefetch 1, manual ack)", raw_pika),
    ]
    notes = [
        f"{jobs} no-op jobs per run; rate over the last 80% of the queue",
        "jobsuite per job: decode + validate, job.started and job.succeeded events with"
        " publisher confirms (one wait per job), output + manifest files, JSON log lines, ack",
    ]
    if baseline := os.environ.get("BENCH_BASELINE"):
        # e.g. `git worktree add ../before <commit>`; BENCH_BASELINE=../before make bench
        contenders.insert(
            1, (f"jobsuite runner at {Path(baseline).name}", baseline_runner(Path(baseline)))
        )
    if celery_available():
        contenders.append(("Celery (prefork 2, acks late, prefetch x1)", celery))
    else:
        notes.append("Celery not installed: left out")
    figures = [Figure(name, "jobs/s") for name, _ in contenders]
    for _ in range(runs):
        for figure, (_name, contender) in zip(figures, contenders, strict=True):
            figure.samples.append(run_once(contender, jobs))
            print(f"  {figure.what}: {figure.samples[-1]:.0f} jobs/s", file=sys.stderr, flush=True)
    return Section("Per-job overhead of the worker runner", figures, notes)


if __name__ == "__main__":
    n = int(os.environ.get("BENCH_JOBS", "1000"))
    print(overhead_section(n, int(os.environ.get("BENCH_RUNS", "1"))).markdown())
