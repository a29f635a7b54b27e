"""Instructions per job, counted by valgrind's callgrind (`--only instructions`, not in the
default run: about 4 minutes a tree): the same count for the same code and input whatever
else the machine does, where the CPU times of the other sections move by a fifth from
process to process on a shared 2-core VM. It tells a change of the code from a change of the
machine (a flagged figure, an effect smaller than the noise); it says nothing of time spent
waiting, in the kernel, or in the broker.

Each contender is counted at two sizes, so that start-up and shutdown cancel out:
per job = (count(large) - count(small)) / (large - small).

- the tiny resize job's handler (640x480 JPEG to 160 px) in one process, on a tmpfs blob
  folder (`tiny_probe.py`);
- the runner with a no-op handler (`noop_worker.py`) draining a queue of no-op jobs: the
  runner's own work, pika's included;
- the gateway accepting the tiny job's upload (`POST /jobs/resize`, the 16 KiB JPEG, one
  request at a time on a kept-alive connection, its blob folder on tmpfs): the HTTP request,
  the form, the checks, the blob and the confirmed publish, uvicorn and pika included.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory, TemporaryFile

import httpx

from benchmarks.drain import fill_noop_jobs, run_once
from benchmarks.lean_http import Connection
from benchmarks.load import resize_request
from benchmarks.namespace import bench_namespace
from benchmarks.stats import Figure, Section
from benchmarks.trees import Tree, Trees
from tests.support.broker import TestBroker
from tests.support.gateway import closed_url
from tests.support.keys import admin_key, bearer
from tests.support.ports import free_port
from tests.support.processes import service_env

TINY_PROBE = "benchmarks.tiny_probe"
# As overhead.py names them; not imported from there, which needs the bench extra (Celery).
NOOP_WORKER = "benchmarks.noop_worker"
TMPFS = Path("/dev/shm")
SIZES = (20, 120)  # jobs at the small and the large count
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_SLOW_S = 900  # valgrind runs Python about 50 times slower


def collected(stderr: str) -> int:
    """The instruction count callgrind printed at the process's end."""
    found = _COLLECTED.findall(stderr)
    if not found:
        raise RuntimeError(f"no instruction count from callgrind:\n{stderr[-2000:]}")
    return int(found[-1])


CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def under_callgrind(command: list[str]) -> list[str]:
    return [*CALLGRIND, *command]


def handler_count(tree: Tree, jobs: int) -> int:
    done = tree.run(TINY_PROBE, str(jobs), prefix=CALLGRIND, timeout=_SLOW_S)
    return collected(done.stderr)


def runner_count(tree: Tree, jobs: int) -> int:
    def contender(broker: TestBroker, n: int) -> int:
        queue = fill_noop_jobs(broker, n)
        with TemporaryDirectory(dir=TMPFS, prefix="jobsuite-bench-") as folder:
            env = service_env(broker.settings, BLOB_DIR=folder)
            worker = subprocess.Popen(
                under_callgrind(tree.command(NOOP_WORKER)),
                cwd=tree.root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                broker.wait_until(lambda: broker.depth(queue) == 0, _SLOW_S, f"{queue} drained")
            finally:
                worker.terminate()  # the job in hand is finished first (the runner's drain)
                _, stderr = worker.communicate(timeout=_SLOW_S)
            return collected(stderr)

    return int(run_once(contender, jobs))


def gateway_count(tree: Tree, jobs: int) -> int:
    """The gateway's instructions from its start to its end, having accepted `jobs` tiny
    uploads (and one more to warm up) one after another."""
    with (
        bench_namespace(tree) as ns,
        TemporaryDirectory(dir=TMPFS, prefix="jobsuite-bench-") as blobs,
    ):
        settings = replace(ns.settings, blob_dir=Path(blobs))
        key = admin_key(settings.state_dir, settings.state_url)
        url = f"http://127.0.0.1:{free_port()}"
        env = service_env(
            settings,
            GATEWAY_HOST="127.0.0.1",
            GATEWAY_PORT=url.rsplit(":", 1)[1],
            AUDIT_URL=closed_url(),
            AUDIT_API_KEY=key,
        )
        with TemporaryFile("w+") as stderr:
            gateway = subprocess.Popen(
                under_callgrind(tree.command("services.gateway")),
                cwd=tree.root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )
            try:
                _wait_ready(url, gateway)
                request = resize_request()(url, bearer(key))
                with Connection(url, timeout=_SLOW_S) as connection:
                    for _ in range(jobs + 1):
                        reply = connection.send(request)
                        if reply.status_code != 202:
                            raise RuntimeError(f"upload answered {reply.status_code}: {reply.text}")
            finally:
                gateway.send_signal(signal.SIGTERM)
                gateway.wait(timeout=_SLOW_S)
            stderr.seek(0)
            return collected(stderr.read())


def _wait_ready(url: str, gateway: subprocess.Popen[str]) -> None:
    """/readyz and /healthz 200 (the broker reached): started under callgrind takes a while."""
    deadline = time.monotonic() + _SLOW_S
    for path in ("/readyz", "/healthz"):
        while True:
            if gateway.poll() is not None:
                raise RuntimeError(f"the gateway exited {gateway.returncode} under callgrind")
            try:
                if httpx.get(url + path, timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway's {path} not 200 within {_SLOW_S} s")
            time.sleep(0.5)


def _per_job(count: int, count_small: int) -> float:
    return (count - count_small) / (SIZES[1] - SIZES[0]) / 1e6


def instructions_section(trees: Trees) -> Section:
    unit = "M instr/job"
    handler = Figure("tiny resize job, the handler alone (640x480 JPEG to 160 px)", unit)
    runner = Figure("no-op job, the runner (decode, events, confirms, manifest, ack)", unit)
    gateway = Figure(
        "tiny resize job accepted by the gateway (upload, checks, blob, publish)", unit
    )
    figures = [handler, runner, gateway]
    for figure in figures:  # fewer is better; each is its own ratio's anchor
        figure.higher_is_better, figure.anchor = False, figure
    notes = [
        f"callgrind's instruction count of one process at {SIZES[0]} and {SIZES[1]} jobs;"
        " per job = the difference / the jobs between: start-up and shutdown cancel out",
        "the handler on a tmpfs blob folder in one process (benchmarks/tiny_probe.py); the"
        " runner: benchmarks/noop_worker.py draining a queue of no-op jobs, its blob folder on"
        " tmpfs, the broker's own work not counted; the gateway: one process accepting the"
        " uploads one at a time from this process on a kept-alive connection, its blob folder"
        " on tmpfs (from its start to its end after SIGTERM)",
        "instructions, not time: the same for the same code and input on any load, blind to"
        " waits, system calls' work in the kernel and cache misses; one run per tree",
    ]
    if shutil.which("valgrind") is None:
        return Section("Instructions per job (callgrind)", [], [*notes, "valgrind not found"])
    for tree in trees.in_turn(0):
        if tree.module(TINY_PROBE):
            counts = [handler_count(tree, n) for n in SIZES]
            handler.of(tree).samples.append(_per_job(counts[1], counts[0]))
        if tree.module(NOOP_WORKER):
            counts = [runner_count(tree, n) for n in SIZES]
            runner.of(tree).samples.append(_per_job(counts[1], counts[0]))
        counts = [gateway_count(tree, n) for n in SIZES]
        gateway.of(tree).samples.append(_per_job(counts[1], counts[0]))
        print(tree.named("  instructions counted"), file=sys.stderr, flush=True)
    shown = [f for f in figures if f.samples]
    return Section("Instructions per job (callgrind)", shown, notes)


if __name__ == "__main__":
    print(instructions_section(Trees()).markdown())
