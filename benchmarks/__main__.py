"""`make bench` or `python -m benchmarks [jobs] [runs] [--only resize,pdf]`: the sections'
tables to stdout and to bench-results.md. Every section by default; see --help for sizes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from benchmarks.accept import accept_section
from benchmarks.e2e_resize import e2e_section
from benchmarks.memory import memory_section
from benchmarks.overhead import overhead_section
from benchmarks.pdf import pdf_section
from benchmarks.profile_runner import profile_table
from benchmarks.resize import resize_section
from benchmarks.stats import header
from shared.log import configure_logging

Run = Callable[[argparse.Namespace], str]
SECTIONS: dict[str, Run] = {
    "overhead": lambda a: overhead_section(a.jobs, a.runs).markdown(),
    "profile": lambda a: profile_table(a.jobs // 2),
    "resize": lambda a: resize_section(a.runs, a.resize_images).markdown(),
    "e2e": lambda a: e2e_section(a.runs, a.e2e_jobs, a.e2e_window).markdown(),
    "accept": lambda a: accept_section(a.runs, a.accept_jobs, a.accept_clients).markdown(),
    "pdf": lambda a: pdf_section(a.runs * a.pdf_docs).markdown(),
    "memory": lambda a: memory_section(a.memory_jobs).markdown(),
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("jobs", nargs="?", type=int, default=1000, help="overhead: jobs per run")
    p.add_argument("runs", nargs="?", type=int, default=3, help="interleaved runs per figure")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    p.add_argument("--resize-images", type=int, default=3, help="images per probe process")
    p.add_argument("--e2e-jobs", type=int, default=300, help="jobs per end-to-end run")
    p.add_argument("--e2e-window", type=int, default=8, help="end-to-end jobs in flight")
    p.add_argument("--accept-jobs", type=int, default=2000, help="jobs per accept-rate run")
    p.add_argument("--accept-clients", type=int, default=32, help="HTTP client threads")
    p.add_argument("--pdf-docs", type=int, default=3, help="documents per run and contender")
    p.add_argument("--memory-jobs", type=int, default=1000, help="jobs of each type per round")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - SECTIONS.keys()
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    with redirect_stdout(sys.stderr):  # log lines to stderr: stdout is the table
        configure_logging("bench", "warning", "json")
    parts = [header()]
    for name in args.only.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        parts.append(SECTIONS[name](args))
    text = "\n".join(parts)
    print(text)
    Path("bench-results.md").write_text(text)


if __name__ == "__main__":
    main()
