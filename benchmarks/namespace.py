"""One benchmark run's own namespace on the local RabbitMQ and its own folder (blobs, logs):
services started in it (from the tree given) are stopped, then the namespace is deleted,
whatever happens. The folder stays until the whole bench run ends (benchmarks/scratch.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.scratch import scratch_folder
from benchmarks.trees import CURRENT, Tree
from shared.config import Settings
from tests.support.broker import AMQP_URL, TestBroker, unique_namespace
from tests.support.processes import Spawner


@dataclass
class BenchNamespace:
    settings: Settings
    broker: TestBroker
    spawn: Spawner
    folder: Path


@contextmanager
def bench_namespace(tree: Tree = CURRENT, prefix: str = "bench") -> Iterator[BenchNamespace]:
    with scratch_folder() as folder:
        settings = Settings(
            amqp_url=AMQP_URL,
            namespace=unique_namespace(prefix),
            blob_dir=folder / "blobs",
            state_dir=folder / "state",
            log_format="json",
        )
        broker = TestBroker(settings)
        spawn = tree.spawner(settings, folder)
        try:
            broker.declare()
            yield BenchNamespace(settings, broker, spawn, folder)
        finally:
            try:
                spawn.stop_all()  # before the delete: a service re-declaring meanwhile wedges it
            finally:
                broker.close()
