"""`settle_heap`: the start-up heap frozen, the youngest generation collected less often,
and cycles made afterwards still freed without anyone calling `gc.collect`. Each check runs
in a process of its own: the settings are process-wide, and pytest's own heap stays as is."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from shared.heap import YOUNG_GENERATION_THRESHOLD


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    out = run_python(
        """
        import gc
        from shared.heap import settle_heap
        loaded = [{"n": i} for i in range(5000)]  # what a service builds at start
        before = gc.get_freeze_count()
        settle_heap()
        print(before, gc.get_freeze_count() >= 5000, gc.get_threshold()[0], gc.isenabled())
        """
    )
    assert out == f"0 True {YOUNG_GENERATION_THRESHOLD} True"


def test_a_cycle_made_after_settling_is_still_freed_by_the_collector_alone() -> None:
    out = run_python(
        f"""
        import gc, weakref
        from shared.heap import settle_heap
        settle_heap()
        freed = []

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: reference counting alone never frees it
        weakref.finalize(a, freed.append, True)
        del a, b
        # Twice the threshold's worth of containers kept alive, and no explicit collection.
        kept = [[i] for i in range(2 * {YOUNG_GENERATION_THRESHOLD})]
        print(freed == [True])
        """
    )
    assert out == "True"


def test_a_service_whose_jobs_make_cycles_can_keep_the_default_pace() -> None:
    out = run_python(
        """
        import gc
        from shared.heap import settle_heap
        default = gc.get_threshold()
        settle_heap(young_threshold=None)
        print(gc.get_threshold() == default, gc.get_freeze_count() > 0)
        """
    )
    assert out == "True True"
