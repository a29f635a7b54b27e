"""A process seen from /proc (Linux): resident memory now, its high-water mark, CPU time."""

from __future__ import annotations

import os
from pathlib import Path


def status_mb(field: str, pid: int | str = "self") -> float:
    """`VmRSS` (resident now) or `VmHWM` (peak resident) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) / 1024  # reported in kB
    raise LookupError(f"{field} not in /proc/{pid}/status")


def rss_mb(pid: int | str = "self") -> float:
    return status_mb("VmRSS", pid)


def peak_rss_mb(pid: int | str = "self") -> float:
    return status_mb("VmHWM", pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_cpu_seconds(pid: int | None) -> float:
    """The broker node's CPU seconds so far (`pid` from broker_pid); nan without a local
    node to see, so a difference of two readings is nan too."""
    return cpu_seconds(pid) if pid is not None else float("nan")


def broker_pid(proc: Path = Path("/proc")) -> int | None:
    """The local RabbitMQ node's Erlang VM (`beam.smp` running `rabbit`), or None when there
    is none on this machine (a broker elsewhere, in a container) or it cannot be seen."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "beam.smp":
                continue
            if b"rabbit" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return None
