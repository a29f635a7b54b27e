"""The bench's view of processes in /proc: which one is the local RabbitMQ node, read from a
/proc-shaped folder."""

from __future__ import annotations

from pathlib import Path

from benchmarks.procmem import broker_pid


def process(proc: Path, pid: int, comm: str, cmdline: list[str]) -> None:
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "comm").write_text(comm + "\n")
    (folder / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in cmdline) + b"\0")


def test_the_broker_is_the_erlang_vm_running_rabbit(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()  # not a pid
    process(tmp_path, 10, "python3", ["python3", "-m", "rabbit"])  # not an Erlang VM
    process(tmp_path, 20, "beam.smp", ["beam.smp", "--", "-s", "couch"])  # another Erlang app
    process(tmp_path, 30, "beam.smp", ["beam.smp", "--", "-s", "rabbit", "boot"])
    (tmp_path / "40").mkdir()  # gone before its files were read
    assert broker_pid(tmp_path) == 30


def test_no_broker_on_this_machine_is_none(tmp_path: Path) -> None:
    process(tmp_path, 20, "beam.smp", ["beam.smp", "--", "-s", "couch"])
    assert broker_pid(tmp_path) is None
