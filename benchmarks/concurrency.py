"""Jobs at once in one worker process (WORKER_CONCURRENCY), this tree only:
(a) mail jobs against an SMTP sink that answers each mail after 200 ms: one mailer process
running 8 jobs at once against 8 mailer processes (and one process, one at a time);
(b) tiny resize jobs (640x480 JPEG to 160 px wide) drained by 2 resizer processes at 1, 2 and 8
jobs at once against Dramatiq (2 processes; 1 and 8 threads) and Celery (prefork 2, acks
late, prefetch x1, on a quorum queue and on its default classic queue) running the
resizer's own handler on the same blob store: Celery on the quorum queue is issue 14's anchor
for the runner with the same work. Beside them, plain pika doing the same work with the
runner's two confirmed events before each ack (what the contract costs with none of the
runner's own work), with one (not the contract) and with the ack alone.

Each run: a fresh namespace, the queue filled first, then the workers start; the rate and
CPU per job are taken from the moment a fifth of the jobs is done until all are (a job is
done when its outputs are in the blob store: Dramatiq holds several unacked at once, so the
queue's depth would end the run early)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pika

from benchmarks.celery_run import celery_available, celery_workers
from benchmarks.drain import Drained, fill, stop, tree_cpu_seconds
from benchmarks.namespace import BenchNamespace, bench_namespace
from benchmarks.stats import Figure, Section, anchored
from benchmarks.trees import CURRENT
from cli.bench_cmds import sample_image
from shared.messages import Job, encode
from tests.support.broker import AMQP_URL
from tests.support.processes import service_env
from tests.support.smtp_server import LocalSmtpServer

if TYPE_CHECKING:
    from benchmarks.celery_app import QueueType

SMTP_DELAY_S = 0.2
IMAGE = (640, 480)
INPUT_KEY = "inputs/bench/photo.jpg"  # one input for every job: the fill is not measured
_TIMEOUT_S = 300.0
_POLL_S = 0.05


class SlowSink:
    """An SMTP server's handler that takes every mail and answers 250 after SMTP_DELAY_S."""

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        await asyncio.sleep(SMTP_DELAY_S)
        return "250 OK"


def drain_outputs(
    folder: Path, jobs: int, procs: list[subprocess.Popen[bytes]], done_file: str | None = None
) -> Drained:
    """Jobs/s and CPU ms per job from a fifth of the jobs done until all are; a job is done
    when its output folder holds `done_file` (any finished file when None)."""
    outputs = folder / "outputs"
    done: set[str] = set()
    deadline = time.monotonic() + _TIMEOUT_S
    mark = jobs // 5
    t0, done_at_t0, cpu_at_t0 = 0.0, 0, 0.0
    while len(done) < jobs:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not drained within {_TIMEOUT_S}s ({len(done)} of {jobs})")
        time.sleep(_POLL_S)
        for job_id in os.listdir(outputs) if outputs.is_dir() else []:
            if job_id not in done and _finished(outputs / job_id, done_file):
                done.add(job_id)
        if not t0 and len(done) >= mark:
            t0, done_at_t0, cpu_at_t0 = time.perf_counter(), len(done), tree_cpu_seconds(procs)
    elapsed, cpu = time.perf_counter() - t0, tree_cpu_seconds(procs) - cpu_at_t0
    finished = jobs - done_at_t0
    if not finished or elapsed <= 0:
        # Every job was done by the poll that saw the fifth (a run too small for the poll):
        # no window to measure; nan, as drain() gives, rather than a division by zero.
        return Drained(float("nan"), float("nan"))
    return Drained(finished / elapsed, 1000 * cpu / finished)


def _finished(folder: Path, name: str | None) -> bool:
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    if name is not None:
        return name in names
    return any(not n.startswith(".tmp-") for n in names)


def _publisher(ns: BenchNamespace, job_type: str) -> Callable[[Job], None]:
    channel = ns.broker.connection.channel()
    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, type=job_type)

    def publish(job: Job) -> None:
        channel.basic_publish(ns.broker.names.jobs_exchange, job_type, encode(job), props)

    return publish


def mailers(processes: int, concurrency: int, jobs: int) -> Drained:
    with bench_namespace() as ns, LocalSmtpServer(SlowSink()) as sink:
        publish = _publisher(ns, "mail")
        params = {"to": ["bench@example.com"], "subject": "bench", "text": "a mail"}
        queue = ns.broker.names.task_queue("mail")
        fill(ns.broker, queue, jobs, lambda _i: publish(Job(type="mail", params=params)))
        env = service_env(
            ns.settings,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            WORKER_CONCURRENCY=str(concurrency),
            LOG_LEVEL="warning",
        )
        procs = [CURRENT.start("services.mailer", env=env) for _ in range(processes)]
        try:
            return drain_outputs(ns.settings.blob_dir, jobs, procs, "manifest.json")
        finally:
            stop(procs)


def _resize_jobs(ns: BenchNamespace, jobs: int) -> list[Job]:
    blobs_input = ns.settings.blob_dir / INPUT_KEY
    blobs_input.parent.mkdir(parents=True, exist_ok=True)
    blobs_input.write_bytes(sample_image(IMAGE))
    return [Job(type="resize", params={"width": 160}, inputs=[INPUT_KEY]) for _ in range(jobs)]


def resizers(concurrency: int, jobs: int) -> Drained:
    # At its default log level (info: a line per job), as Celery and Dramatiq are at theirs.
    return _two_draining_resize_jobs(
        "services.resizer", jobs, "manifest.json", WORKER_CONCURRENCY=str(concurrency)
    )


def pika_resizers(events: int, jobs: int) -> Drained:
    """2 processes of plain pika doing the same work with `events` confirmed events per job
    before the ack (benchmarks/pika_events_worker.py): 2, the runner's messages with none of
    the runner's own work, is the floor of any runner under the contract; 1, job.started
    merged into job.succeeded (not the contract); 0, the ack alone."""
    return _two_draining_resize_jobs(
        "benchmarks.pika_events_worker",
        jobs,
        BENCH_WORK="resize",
        BENCH_EVENTS_PER_JOB=str(events),
    )


def _two_draining_resize_jobs(
    module: str, jobs: int, done_file: str | None = None, **env: str
) -> Drained:
    """`jobs` tiny resize jobs in the namespace's resize queue, drained by 2 processes of
    `module` (`env` added to the namespace's); a job is done once its output folder holds
    `done_file` (any finished file when None)."""
    with bench_namespace() as ns:
        publish = _publisher(ns, "resize")
        todo = iter(_resize_jobs(ns, jobs))
        fill(ns.broker, ns.broker.names.task_queue("resize"), jobs, lambda _i: publish(next(todo)))
        procs = [CURRENT.start(module, env=service_env(ns.settings, **env)) for _ in range(2)]
        try:
            return drain_outputs(ns.settings.blob_dir, jobs, procs, done_file)
        finally:
            stop(procs)


def dramatiq_workers(threads: int, jobs: int) -> Drained:
    from benchmarks.dramatiq_app import make_broker, queue_name

    with bench_namespace() as ns:
        queue = queue_name(ns.settings.namespace)
        env = service_env(ns.settings)
        broker, actor = make_broker(ns.settings.namespace, AMQP_URL)
        try:
            todo = iter(_resize_jobs(ns, jobs))
            fill(ns.broker, queue, jobs, lambda _i: actor.send(encode(next(todo)).decode()))
            args = ["benchmarks.dramatiq_app", "-p", "2", "-t", str(threads), "-Q", queue]
            procs = [CURRENT.start("dramatiq", *args, env=env)]
            try:
                return drain_outputs(ns.settings.blob_dir, jobs, procs)
            finally:
                stop(procs)
        finally:
            channel = ns.broker.connection.channel()
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel.queue_delete(name)
            broker.close()


def celery_workers_resizing(queue_type: QueueType, jobs: int) -> Drained:
    with bench_namespace() as ns:
        bodies = [encode(job).decode() for job in _resize_jobs(ns, jobs)]
        workers = celery_workers(ns.broker, queue_type, jobs, "resize", lambda i: (bodies[i],))
        with workers as (_queue, procs):
            return drain_outputs(ns.settings.blob_dir, jobs, procs)


def dramatiq_available() -> bool:
    try:
        import dramatiq as _dramatiq  # noqa: F401
    except ImportError:
        return False
    return True


_RESIZE_CONTENDERS: dict[str, Callable[[Any, int], Drained]] = {
    "jobsuite": resizers,
    "pika": pika_resizers,
    "dramatiq": dramatiq_workers,
    "celery": celery_workers_resizing,
}


def _measure(rate: Figure, cpu: Figure, run: Callable[[], Drained]) -> None:
    drained = run()
    rate.samples.append(drained.rate)
    cpu.samples.append(drained.cpu_ms)
    line = f"  {rate.what}: {drained.rate:.1f} jobs/s, {drained.cpu_ms:.2f} ms CPU per job"
    print(line, file=sys.stderr, flush=True)


def _pair(what: str) -> tuple[Figure, Figure]:
    return Figure(what, "jobs/s"), Figure(f"{what}: CPU per job", "ms", higher_is_better=False)


def concurrency_section(runs: int, mail_jobs: int, resize_jobs: int) -> Section:
    mail = {
        (1, 8): _pair("mailer, 1 process x WORKER_CONCURRENCY=8"),
        (8, 1): _pair("mailer, 8 processes x 1"),
        (1, 1): _pair("mailer, 1 process x 1"),
    }
    # (who, how): how = jobs at once per process (jobsuite, Dramatiq) or the queue (Celery)
    resize: dict[tuple[str, int | str], tuple[Figure, Figure]] = {
        ("jobsuite", 1): _pair("resizer, 2 processes x WORKER_CONCURRENCY=1"),
        # The least overlap of a job's waits (its events' confirms, the ack's way back).
        ("jobsuite", 2): _pair("resizer, 2 processes x WORKER_CONCURRENCY=2"),
        ("jobsuite", 8): _pair("resizer, 2 processes x WORKER_CONCURRENCY=8"),
        # Plain pika, the same work: under the contract (2 confirmed events before the ack)
        # with none of the runner's own work; below, with the ack alone (no events, as Celery).
        ("pika", 2): _pair("plain pika, 2 processes: the work, 2 confirmed events, the ack"),
        # Not the contract (every step is its own event): what merging job.started into
        # job.succeeded could give with the work.
        ("pika", 1): _pair("plain pika, 2 processes: the work, 1 confirmed event, the ack"),
        ("pika", 0): _pair("plain pika, 2 processes: the work, the ack (no events)"),
    }
    notes = [
        f"mail: {mail_jobs} text mails per run to an aiosmtpd sink in the bench process that"
        f" answers each DATA after {SMTP_DELAY_S * 1000:.0f} ms (8 at once: at most"
        f" {8 / SMTP_DELAY_S:.0f} mails/s); the first row is the ratios' anchor",
        f"resize: {resize_jobs} jobs per run, one {IMAGE[0]}x{IMAGE[1]} JPEG to 160 px wide;"
        " the same handler in Dramatiq's actor and Celery's task (its outputs, no manifest, no"
        " events)",
        "plain pika (benchmarks/pika_events_worker.py, prefetch 1): the same handler and"
        " store, then 2 confirmed events before the ack (the runner's messages: the floor of"
        " any runner under the contract), 1 (not the contract: job.started merged into"
        " job.succeeded), or the ack alone (no events)",
        "CPU per job: user + system time of the worker processes (and children) / jobs",
    ]
    if dramatiq_available():
        resize[("dramatiq", 1)] = _pair("Dramatiq, 2 processes x 1 thread")
        resize[("dramatiq", 8)] = _pair("Dramatiq, 2 processes x 8 threads")
    else:
        notes.append("Dramatiq not installed: left out")
    if celery_available():
        resize[("celery", "quorum")] = _pair(
            "Celery (prefork 2, acks late, prefetch x1, quorum queue)"
        )
        resize[("celery", "classic")] = _pair("Celery (same, its default classic queue)")
    else:
        notes.append("Celery not installed: left out")
    for _ in range(runs):
        for (processes, concurrency), (rate, cpu) in mail.items():
            jobs = mail_jobs if concurrency * processes > 1 else max(10, mail_jobs // 8)
            _measure(rate, cpu, partial(mailers, processes, concurrency, jobs))
        for (who, how), (rate, cpu) in resize.items():
            _measure(rate, cpu, partial(_RESIZE_CONTENDERS[who], how, resize_jobs))
    figures = [
        *anchored([f for pair in mail.values() for f in pair[:1]]),
        *anchored([f for pair in resize.values() for f in pair[:1]]),
        *anchored([pair[1] for pair in mail.values()]),
        *anchored([pair[1] for pair in resize.values()]),
    ]
    return Section("Jobs at once in one worker process (WORKER_CONCURRENCY)", figures, notes)
