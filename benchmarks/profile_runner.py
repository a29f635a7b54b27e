"""Where the runner's time goes: one jobsuite worker draining no-op jobs under py-spy
(all threads, idle time included), summarised as the share of samples per function.

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

from benchmarks.overhead import _drain_rate, _fill, _jobs_raw, _stop, run_once
from tests.support.broker import TestBroker
from tests.support.processes import ROOT, service_env

# Functions whose inclusive share says where a job's time goes.
WATCHED = {
    "_process": "job thread, whole job",
    "_outputs_of": "handler + manifest (blob files)",
    "call": "job thread waiting on the I/O thread (IoBridge.call)",
    "publish_event": "publish an event and wait for its confirm",
    "succeed": "settle: events + ack",
    "ack": "basic.ack",
    "decode_job": "decode + validate the job",
    "info": "JSON log lines (structlog)",
    "pump": "I/O thread: pika event loop",
}


def _summarise(raw: Path) -> list[tuple[str, float]]:
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
    return [(f"{WATCHED[k]} (`{k}`)", 100 * v / total) for k, v in inclusive.most_common()]


def profile(broker: TestBroker, jobs: int, out: Path) -> float:
    queue = broker.names.task_queue("resize")
    _fill(broker, queue, jobs, _jobs_raw(broker))
    env = service_env(broker.settings)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.scripted_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    command = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record"]
    command += ["--threads", "--idle", "--nonblocking", "--format", "raw", "-r", "200"]
    command += ["-o", str(out), "--pid", str(worker.pid)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return _drain_rate(broker, queue, jobs, [worker, spy])
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C, not on SIGTERM
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            _stop([spy])
        _stop([worker])


def profile_table(jobs: int) -> str:
    with TemporaryDirectory() as tmp:
        out = Path(tmp) / "runner.txt"
        rate = run_once(lambda broker, n: profile(broker, n, out), jobs)
        if not out.exists():
            return "py-spy produced no profile (not installed, or ptrace not permitted)\n"
        rows = _summarise(out)
    lines = [
        f"### Where the runner's time goes (1 worker under py-spy, {rate:.0f} jobs/s)",
        "",
        "| in | share of samples, all threads |",
        "|---|---|",
    ]
    lines += [f"| {name} | {share:.0f}% |" for name, share in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(profile_table(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
