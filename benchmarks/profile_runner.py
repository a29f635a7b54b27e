"""Where the runner's time goes: one jobsuite worker (of each tree; benchmarks/noop_worker.py
where the tree has it, else the scripted worker) draining no-op jobs under
py-spy (all threads, idle time included), summarised as the share of samples per function.

    .venv/bin/python -m benchmarks.profile_runner [jobs]
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.drain import SCRIPTED_WORKER, drain_rate, fill_noop_jobs, run_once, stop
from benchmarks.overhead import NOOP_WORKER
from benchmarks.stats import Table
from benchmarks.trees import Tree, Trees
from tests.support.broker import TestBroker
from tests.support.processes import service_env

# Functions whose inclusive share says where a job's time goes: names of this tree's runner,
# and of the runner before the groundwork (`_process`, `_outputs_of`), so a baseline of
# either shows; a function a tree does not have is absent from its column.
WATCHED = {
    "perform": "job thread, whole job",
    "_process": "job thread, whole job",
    "run_handler_once": "handler + manifest (blob files)",
    "_outputs_of": "handler + manifest (blob files)",
    "call": "job thread waiting on the I/O thread (IoBridge.call)",
    "publish_event": "publish an event (its confirm is waited for when settling)",
    "on_delivery": "I/O thread: check a delivery, job.started, hand over",
    "write_manifest": "the manifest (a new folder and file in the blob store)",
    "succeed": "settle: events + ack",
    "ack": "basic.ack",
    "decode_job": "decode + validate the job",
    "info": "JSON log lines (structlog)",
    "pump": "I/O thread: pika event loop",
}
Shares = dict[str, float]


def _summarise(raw: Path) -> Shares:
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        # frames look like `IoBridge.call (shared/bridge.py:42)`
        names = {frame.split(" (")[0].rsplit(".", 1)[-1] for frame in stack.split(";")}
        for name in names & WATCHED.keys():
            inclusive[name] += n
    return {f"{WATCHED[k]} (`{k}`)": 100 * v / total for k, v in inclusive.most_common()}


def profile(tree: Tree, module: str, broker: TestBroker, jobs: int, out: Path) -> float:
    queue = fill_noop_jobs(broker, jobs)
    worker = tree.start(module, env=service_env(broker.settings))
    command = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record"]
    command += ["--threads", "--idle", "--nonblocking", "--format", "raw", "-r", "200"]
    command += ["-o", str(out), "--pid", str(worker.pid)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return drain_rate(broker, queue, jobs, [worker, spy])
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C, not on SIGTERM
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            stop([spy])
        stop([worker])


def _profiled(tree: Tree, module: str, jobs: int) -> tuple[float, Shares] | None:
    """Jobs/s under py-spy and the shares, or None when py-spy produced nothing."""
    with TemporaryDirectory() as tmp:
        out = Path(tmp) / "runner.txt"
        rate = run_once(lambda broker, n: profile(tree, module, broker, n, out), jobs)
        return (rate, _summarise(out)) if out.exists() else None


def profile_table(trees: Trees, jobs: int) -> Table:
    workers = trees.find("no-op worker", lambda t: t.module(NOOP_WORKER, SCRIPTED_WORKER))
    results = {tree: _profiled(tree, module, jobs) for tree, module in workers.in_turn(0)}
    done = {tree: result for tree, result in results.items() if result}
    rates = "; ".join(tree.named(f"{rate:.0f} jobs/s") for tree, (rate, _) in done.items())
    title = f"Where the runner's time goes (1 worker under py-spy, {rates or 'no profile'})"
    notes = list(workers.notes)
    notes += [
        tree.named("py-spy produced no profile (not installed, or ptrace not permitted)")
        for tree, result in results.items()
        if result is None
    ]
    if trees.baseline:
        notes.append("one run per tree under py-spy, which slows the worker: not compared")
        notes.append("-: no sample in that function (one the tree's runner does not have)")
    order = sorted(done, key=lambda t: t.is_baseline)
    names = list(dict.fromkeys(name for tree in order for name in done[tree][1]))
    columns = ["in", *(tree.named("share of samples, all threads") for tree in order)]
    rows = [[name, *(_share(done[tree][1], name) for tree in order)] for name in names]
    return Table(title, columns, rows, notes)


def _share(shares: Shares, name: str) -> str:
    return f"{shares[name]:.0f}%" if name in shares else "-"


if __name__ == "__main__":
    print(profile_table(Trees(), int(sys.argv[1]) if len(sys.argv) > 1 else 500).markdown())
