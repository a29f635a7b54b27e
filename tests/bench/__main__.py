"""`make bench` or `python -m tests.bench [jobs] [runs]`: table to stdout + bench-results.md."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.bench.overhead import overhead_section
from tests.bench.profile_runner import profile_table
from tests.bench.stats import header


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    parts = [header(), overhead_section(jobs, runs).markdown(), profile_table(jobs // 2)]
    text = "\n".join(parts)
    print(text)
    Path("bench-results.md").write_text(text)


if __name__ == "__main__":
    main()
