"""Memory: resident set (VmRSS) of every service process, idle, after N jobs of each type
through the gateway and after a second N: gateway, resizer, renderer, mailer (mailing a real
aiosmtpd sink, services.mailsink) and audit (recording every event), one namespace per tree."""

from __future__ import annotations

import sys
import time

from benchmarks.load import EventStream, mail_request, render_request, resize_request, run_load
from benchmarks.namespace import BenchNamespace, bench_namespace
from benchmarks.procmem import rss_mb
from benchmarks.stats import Figure, Table
from benchmarks.trees import Tree, Trees
from tests.support.audit import start_audit
from tests.support.gateway import start_gateway
from tests.support.keys import bearer
from tests.support.mailsink import start_mailsink
from tests.support.processes import ServiceProcess

SETTLE_S = 2.0
WINDOW = 16


def _start_all(ns: BenchNamespace) -> tuple[str, dict[str, str], dict[str, ServiceProcess]]:
    sink = start_mailsink(ns.spawn, ns.folder / "mail")
    audit = start_audit(ns.spawn, ns.settings, ns.folder / "audit")
    # The sink's variables by name: a **dict[str, str] could hold `settings_override` too.
    smtp = sink.env()
    workers = {
        "resizer": ns.spawn("services.resizer"),
        "renderer": ns.spawn("services.renderer"),
        "mailer": ns.spawn(
            "services.mailer", SMTP_HOST=smtp["SMTP_HOST"], SMTP_PORT=smtp["SMTP_PORT"]
        ),
    }
    for worker in workers.values():
        worker.wait_logged("consuming")
    gateway = start_gateway(ns.spawn, ns.settings, audit_url=audit.url)
    services = {"gateway": gateway.process, **workers, "audit": audit.process}
    return gateway.url, bearer(gateway.key), services


def _settled(ns: BenchNamespace, services: dict[str, ServiceProcess]) -> dict[str, float]:
    """RSS of each service once the audit has recorded every event and all is quiet."""
    queue = ns.broker.names.audit_events_queue
    ns.broker.wait_until(lambda: ns.broker.depth(queue) == 0, 300, "the audit to catch up")
    time.sleep(SETTLE_S)
    return {name: rss_mb(p.pid) for name, p in services.items()}


def _readings(tree: Tree, jobs: int) -> list[dict[str, float]]:
    """RSS per service of `tree`: idle, after one round of jobs, after a second."""
    submits = [resize_request(), render_request(), mail_request()]
    with bench_namespace(tree) as ns:
        url, key, services = _start_all(ns)
        watcher = EventStream(ns.broker)
        readings = [_settled(ns, services)]
        for _ in range(2):
            started = time.perf_counter()
            run_load(url, watcher, submits, jobs * len(submits), WINDOW, headers=key).check()
            readings.append(_settled(ns, services))
            took = time.perf_counter() - started
            what = tree.named(f"{jobs} x 3 jobs")
            print(f"  memory: {what} in {took:.0f} s", file=sys.stderr, flush=True)
    return readings


def memory_section(trees: Trees, jobs: int) -> Table:
    readings = {tree: _readings(tree, jobs) for tree in trees.in_turn(0)}
    columns = ["service", "idle MiB", f"after {jobs:,}", f"after {2 * jobs:,}", "growth"]
    rows: list[list[str]] = []
    figures: list[Figure] = []
    for name in readings[trees.current][0]:
        trio = [_mb(f"{name}, {c.removesuffix(' MiB')}") for c in columns[1:4]]
        for tree, series in readings.items():
            for figure, reading in zip(trio, series, strict=True):
                figure.of(tree).samples.append(reading[name])
        rows += [_row(tree.named(name), [f.of(tree) for f in trio]) for tree in readings]
        figures += trio
    notes = [
        f"{jobs:,} jobs of each type per round (resize a 640x480 JPEG to 160 px, a one-page"
        f" render, a text mail) through the gateway, at most {WINDOW} in flight: the gateway"
        f" and the audit see {3 * jobs:,} jobs a round, each worker {jobs:,}",
        f"VmRSS read once the audit's queue is empty, plus {SETTLE_S:.0f} s; one run"
        + (" per tree, one tree after the other" if trees.baseline else ""),
    ]
    return Table("Memory: RSS of each service process", columns, rows, notes, figures)


def _row(name: str, trio: list[Figure]) -> list[str]:
    idle, first, second = (f.median for f in trio)
    growth = f"{second - first:+.1f} MiB ({(second - first) / first:+.1%})"
    return [name, f"{idle:.1f}", f"{first:.1f}", f"{second:.1f}", growth]


def _mb(what: str) -> Figure:
    return Figure(what, "MiB", higher_is_better=False)
