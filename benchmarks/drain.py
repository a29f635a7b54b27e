"""Queue-draining contenders (the runner overhead, the profile): fill a queue of a fresh
namespace with no-op jobs, start the workers, time how fast they empty it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pika

from benchmarks.namespace import bench_namespace
from benchmarks.procmem import broker_pid, cpu_seconds, node_cpu_seconds
from shared.messages import Job, encode
from tests.support.broker import TestBroker

R = TypeVar("R")
# A run against a fresh namespace: its figure is whatever it measures (a rate, a Drained…).
Contender = Callable[[TestBroker, int], R]
SCRIPTED_WORKER = "tests.support.scripted_worker"  # the real runner; empty params = a no-op
_POLL_S = 0.02
_TIMEOUT_S = 300.0


def run_once(contender: Contender[R], jobs: int) -> R:
    """One contender in a fresh namespace and blob folder, deleted afterwards."""
    with bench_namespace() as ns:
        return contender(ns.broker, jobs)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def fill(broker: TestBroker, queue: str, jobs: int, publish: Callable[[int], object]) -> None:
    # `publish`'s result, if any (Dramatiq's Message, say), is not used.
    for i in range(jobs):
        publish(i)
    broker.wait_until(lambda: broker.depth(queue) >= jobs, 60, f"{jobs} jobs in {queue}")


def fill_noop_jobs(broker: TestBroker, jobs: int) -> str:
    """`jobs` resize jobs with empty params in the namespace's resize queue; its name."""
    queue = broker.names.task_queue("resize")
    fill(broker, queue, jobs, _jobs_raw(broker))
    return queue


@dataclass(frozen=True)
class Drained:
    """How fast the workers emptied the queue, and what CPU it cost them per job (every
    worker process and its children, over the same window as the rate)."""

    rate: float  # jobs/s
    cpu_ms: float  # CPU milliseconds per job
    # The local RabbitMQ node's CPU milliseconds per job over the same window (everything it
    # did then); nan without a local node to see.
    broker_cpu_ms: float = float("nan")


def drain_rate(
    broker: TestBroker, queue: str, jobs: int, procs: list[subprocess.Popen[bytes]]
) -> float:
    """Jobs/s from the moment a fifth of the queue is gone until it is empty."""
    return drain(broker, queue, jobs, procs).rate


def drain(
    broker: TestBroker, queue: str, jobs: int, procs: list[subprocess.Popen[bytes]]
) -> Drained:
    """Jobs/s and CPU ms per job from the moment a fifth of the queue is gone until it is
    empty (start-up, imports included, left out)."""
    deadline = time.monotonic() + _TIMEOUT_S
    mark = jobs - jobs // 5
    node = broker_pid()
    t0, left_at_t0, cpu_at_t0, broker_at_t0 = 0.0, 0, 0.0, 0.0
    while True:
        depth = broker.depth(queue)
        now = time.perf_counter()
        if not t0 and depth <= mark:
            t0, left_at_t0 = now, depth
            cpu_at_t0, broker_at_t0 = tree_cpu_seconds(procs), node_cpu_seconds(node)
        if depth == 0:
            if not t0 or now <= t0 or not left_at_t0:
                return Drained(float("nan"), float("nan"))
            cpu = tree_cpu_seconds(procs) - cpu_at_t0
            node_cpu = node_cpu_seconds(node) - broker_at_t0
            return Drained(
                left_at_t0 / (now - t0), 1000 * cpu / left_at_t0, 1000 * node_cpu / left_at_t0
            )
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker of {queue} exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{queue} not drained within {_TIMEOUT_S}s ({depth} left)")
        broker.connection.sleep(_POLL_S)


def tree_cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU of the processes and their live descendants (Celery's prefork
    children, say)."""
    total = 0.0
    for pid in {d for p in procs for d in _with_descendants(p.pid)}:
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return total


def _with_descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except (OSError, ValueError):
                continue
    return found


def _jobs_raw(broker: TestBroker) -> Callable[[int], None]:
    """Publish job bodies without a confirm each (the fill is not what is measured)."""
    channel = broker.connection.channel()
    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, type="resize")

    def publish(_i: int) -> None:
        job = Job(type="resize", params={})
        channel.basic_publish(broker.names.jobs_exchange, "resize", encode(job), props)

    return publish
