"""The end-to-end section's "throughput the cores allow": the cores over the sum of every
party's CPU per job, taken from the 2-resizer runs only, and left out when the broker's share
was not seen; its ratio is against the 1-resizer throughput (the most scaling those costs
leave room for)."""

from __future__ import annotations

from benchmarks.e2e_resize import Run, _allowed, _record_allowed
from benchmarks.load import LoadResult
from benchmarks.stats import Figure, Section
from benchmarks.trees import CURRENT


def run(broker_ms: float) -> Run:
    return Run(LoadResult(), 2.0, 4.0, 1.0, broker_ms)


def test_the_cores_allow_their_milliseconds_over_every_partys_cpu_per_job() -> None:
    assert run(3.0).cores_allow(2) == 2000 / (2.0 + 4.0 + 1.0 + 3.0)  # 200 jobs/s


def test_only_two_resizer_runs_with_the_brokers_share_count() -> None:
    one = Figure("1 resizer(s): throughput", "jobs/s", [100.0, 110.0, 120.0])
    allowed = _allowed("", one, 2)
    _record_allowed(allowed, 1, CURRENT, run(3.0), 2)  # one resizer: not this figure's run
    _record_allowed(allowed, 2, CURRENT, run(float("nan")), 2)  # no broker seen
    assert allowed.samples == []
    _record_allowed(allowed, 2, CURRENT, run(3.0), 2)
    assert allowed.samples == [200.0]
    rows = Section("e2e", [one, allowed]).markdown().splitlines()
    assert rows[-1].startswith("| 2 resizer(s): throughput the 2 cores allow")
    assert rows[-1].endswith("| 200 (200-200) | jobs/s | 1.82x |")  # 200 / 110
