"""The garbage collector set for a long-running service, once it has started.

Python's default collects its youngest generation every 700 net allocations of container
objects, and now and then the whole heap. A service's heap is mostly what it loaded at start
(modules, the FastAPI app and its pydantic schemas: some 80,000 objects in the gateway), and
its requests and jobs make almost no reference cycles: measured under wrk, the gateway ran a
collection every five or so requests, found nothing to free, and spent about 0.13 ms per
accepted job on it (a tenth of its CPU), most of it rescanning the start-up heap.
"""

from __future__ import annotations

import gc

# Collections of the youngest generation are still frequent enough that the few cycles a
# service does make (an exception and its traceback) are freed within a few hundred requests.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap(young_threshold: int | None = YOUNG_GENERATION_THRESHOLD) -> None:
    """Called once by a service's entry point when it is built, never by library code (it
    changes the whole process): what is alive now lives as long as the process, so it is
    moved out of the collector's sight (`gc.freeze`), and the youngest generation is
    collected every `young_threshold` allocations (None: as often as Python's default)."""
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, oldest)
