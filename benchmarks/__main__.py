"""`make bench` or `python -m benchmarks [jobs] [runs] [--only resize,pdf] [--baseline REF]`:
the sections' tables to stdout and to bench-results.md (progress to stderr). Every section by
default; see --help for sizes. With a baseline (BENCH_BASELINE: a git ref or a checkout
directory) every jobsuite figure is measured in both trees in the same run, and a last table
gives the change against the baseline."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from benchmarks.accept import accept_section
from benchmarks.change import LIMIT_PCT, change_table
from benchmarks.checks import checks_section
from benchmarks.concurrency import concurrency_section
from benchmarks.e2e_resize import e2e_section
from benchmarks.e2e_stores import stores_section
from benchmarks.instructions import instructions_section
from benchmarks.memory import memory_section
from benchmarks.overhead import overhead_section
from benchmarks.pdf import pdf_section
from benchmarks.profile_runner import profile_table
from benchmarks.resize import resize_section
from benchmarks.scratch import described_filesystem, run_folder
from benchmarks.stats import Section, Table, header
from benchmarks.trees import Trees, open_trees
from shared.log import configure_logging

Run = Callable[[argparse.Namespace, Trees], Section | Table]
SECTIONS: dict[str, Run] = {
    "overhead": lambda a, t: overhead_section(t, a.jobs, a.runs),
    "profile": lambda a, t: profile_table(t, a.jobs // 2),
    "concurrency": lambda a, t: concurrency_section(a.runs, a.mail_jobs, a.concurrency_jobs),
    "resize": lambda a, t: resize_section(t, a.runs, a.resize_images),
    "e2e": lambda a, t: e2e_section(t, a.runs, a.e2e_jobs, a.e2e_window, a.e2e_heavy_jobs),
    "stores": lambda a, t: stores_section(a.runs, a.stores_jobs, a.stores_window),
    "accept": lambda a, t: accept_section(
        t, a.runs, a.accept_jobs, a.accept_clients, a.accept_seconds
    ),
    "checks": lambda a, t: checks_section(t, a.runs, a.checks_iterations),
    "pdf": lambda a, t: pdf_section(t, a.runs, a.pdf_docs),
    "memory": lambda a, t: memory_section(t, a.memory_jobs),
    "instructions": lambda a, t: instructions_section(t),
}
# Sections run only when --only names them (slow, and not a figure of the goals).
OPT_IN = frozenset({"instructions"})


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("jobs", nargs="?", type=int, default=1000, help="overhead: jobs per run")
    p.add_argument("runs", nargs="?", type=int, default=3, help="interleaved runs per figure")
    p.add_argument(
        "--only",
        default=",".join(n for n in SECTIONS if n not in OPT_IN),
        help=f"comma-separated sections (not run unless named: {', '.join(sorted(OPT_IN))})",
    )
    p.add_argument("--resize-images", type=int, default=3, help="images per probe process")
    p.add_argument("--mail-jobs", type=int, default=160, help="concurrency: mails per run")
    p.add_argument(
        "--concurrency-jobs", type=int, default=400, help="concurrency: resize jobs per run"
    )
    p.add_argument("--e2e-jobs", type=int, default=300, help="jobs per end-to-end run")
    p.add_argument("--e2e-window", type=int, default=8, help="end-to-end jobs in flight")
    p.add_argument(
        "--e2e-heavy-jobs", type=int, default=120, help="CPU-heavy jobs per end-to-end run"
    )
    p.add_argument("--stores-jobs", type=int, default=60, help="jobs per stores run")
    p.add_argument("--stores-window", type=int, default=4, help="stores: jobs in flight")
    p.add_argument(
        "--accept-jobs", type=int, default=2000, help="jobs per publisher-alone and pika run"
    )
    p.add_argument(
        "--accept-clients",
        type=int,
        default=32,
        help="HTTP connections (wrk), threads calling the publisher alone",
    )
    p.add_argument("--accept-seconds", type=float, default=5, help="seconds of wrk per run")
    p.add_argument(
        "--checks-iterations", type=int, default=2000, help="calls per round of each check"
    )
    p.add_argument("--pdf-docs", type=int, default=10, help="documents per probe process")
    p.add_argument("--memory-jobs", type=int, default=1000, help="jobs of each type per round")
    p.add_argument(
        "--baseline",
        default=os.environ.get("BENCH_BASELINE", ""),
        help="a git ref or a checkout directory to measure beside this tree"
        " (default: $BENCH_BASELINE); adds a change table flagging figures over"
        f" {LIMIT_PCT:g} %% worse beyond the spread",
    )
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - SECTIONS.keys()
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    with redirect_stdout(sys.stderr):  # log lines to stderr: stdout is the table
        configure_logging("bench", "warning", "json")
    with run_folder() as scratch, open_trees(args.baseline) as trees:
        where = f"{scratch.parent} ({described_filesystem(scratch)})"
        parts: dict[str, Section | Table] = {}
        for name in args.only.split(","):
            print(f"{name} ...", file=sys.stderr, flush=True)
            parts[name] = SECTIONS[name](args, trees)
    texts = [
        header(trees.described, where),
        *(part.markdown() for part in parts.values()),
    ]
    if trees.baseline:
        texts.append(change_table(parts).markdown())
    text = "\n".join(texts)
    print(text)
    Path("bench-results.md").write_text(text)


if __name__ == "__main__":
    main()
