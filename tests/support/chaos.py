"""A pool of worker processes and a chaos loop that SIGKILLs and replaces them at random, and
drops their broker connections on request."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.broker import close_connections_named
from tests.support.processes import ServiceProcess


@dataclass
class WorkerPool:
    """`replicas` processes of each worker module; every process ever started is kept, so
    its log can be read after it was killed."""

    spawn: Callable[..., ServiceProcess]
    replicas: dict[str, int]
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    live: list[ServiceProcess] = field(default_factory=list)
    every: list[ServiceProcess] = field(default_factory=list)

    def start(self) -> None:
        for module, count in self.replicas.items():
            for _ in range(count):
                self._start(module)
        for process in self.live:
            process.wait_logged("consuming", timeout=60)

    def _start(self, module: str) -> ServiceProcess:
        process = self.spawn(module, **self.env.get(module, {}))
        self.live.append(process)
        self.every.append(process)
        return process

    def kill_one(self, rng: random.Random) -> ServiceProcess:
        """SIGKILL a random live worker and start a replacement of the same service."""
        victim = rng.choice(self.live)
        victim.kill()
        self.live.remove(victim)
        return self._start(victim.module)

    def count_logged(self, event: str) -> int:
        return sum(len(p.logged(event)) for p in self.every)


@dataclass
class ChaosLoop:
    """Kills a worker every `interval` seconds (± half) until stopped; drops every worker's
    connection (`connection_prefix`) right after the kills numbered in `drop_after_kills`.

    `programme_done` is set once `min_kills` kills and every drop have happened: a test holds
    back part of its work until then, so the chaos cannot miss the run on a fast machine."""

    pool: WorkerPool
    connection_prefix: str
    interval: float = 3.0
    drop_after_kills: tuple[int, ...] = ()
    min_kills: int = 5
    seed: int = 7
    kills: int = 0
    drops: int = 0
    programme_done: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    errors: list[str] = field(default_factory=list)

    def __enter__(self) -> ChaosLoop:
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        while not self._stop.wait(self.interval * rng.uniform(0.5, 1.5)):
            try:
                self.pool.kill_one(rng)
                self.kills += 1
                if self.kills in self.drop_after_kills and close_connections_named(
                    self.connection_prefix
                ):
                    self.drops += 1
                if self.kills >= max(self.min_kills, *self.drop_after_kills):
                    self.programme_done.set()
            except Exception as e:  # reported by the test; the loop must not die silently
                self.errors.append(f"{type(e).__name__}: {e}")
