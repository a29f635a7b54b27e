"""Metrics counted by several processes of one service and served as one (prometheus_client's
multiprocess mode): each process writes its values to files of its own in a folder they
share, and `GET /metrics` of any of them sums the folder's files.

Counters and histograms only (the gateway has no gauge); exemplars are not kept in this mode
(prometheus_client drops them), so a count leads to no trace while more than one process
counts.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ENV = "PROMETHEUS_MULTIPROC_DIR"  # where prometheus_client's values write their files


def count_into(folder: Path) -> None:
    """From now on every metric value made in this process is kept in `folder`'s files (call
    before the process makes its first metric). prometheus_client picks the kind of value
    when it is imported, from the environment; this picks it again."""
    os.environ[ENV] = str(folder)
    values.ValueClass = values.MultiProcessValue()


def collected_from(folder: Path) -> CollectorRegistry:
    """A registry whose exposition is the sum of every process's values in `folder`, those of
    processes gone included (a counter never goes back)."""
    registry = CollectorRegistry(auto_describe=True)
    MultiProcessCollector(registry, path=str(folder))
    return registry


def forget_process(folder: Path, pid: int) -> None:
    """A process of `folder` has exited (its live gauges' files go; its counts stay)."""
    mark_process_dead(pid, str(folder))
