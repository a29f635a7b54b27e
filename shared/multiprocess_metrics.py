"""Metrics counted by several processes of one service and served as one (prometheus_client's
multiprocess mode): each process writes its values to files of its own in a folder they
share, and `GET /metrics` of any of them sums the folder's files.

Counters and histograms only (the gateway has no gauge); exemplars are not kept in this mode
(prometheus_client drops them), so a count leads to no trace while more than one process
counts.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
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
    _SettledFiles(registry, path=str(folder))
    return registry


class _SettledFiles(MultiProcessCollector):
    """Skips a file another process has just made: prometheus_client creates it empty and
    sizes it a moment later, and reading it in between fails the whole collection."""

    def collect(self) -> Iterable[Metric]:
        files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if _sized(f)]
        return self.merge(files, accumulate=True)


def _sized(file: str) -> bool:
    try:
        return os.path.getsize(file) > 0
    except FileNotFoundError:  # a live gauge's file, gone with its process
        return False


def forget_process(folder: Path, pid: int) -> None:
    """A process of `folder` has exited (its live gauges' files go; its counts stay)."""
    mark_process_dead(pid, str(folder))
