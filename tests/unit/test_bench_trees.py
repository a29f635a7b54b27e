"""A tree runs a module to its end, under a tool when given one (the callgrind section's
valgrind), and says why when the run failed."""

from __future__ import annotations

import pytest

from benchmarks.trees import CURRENT


def test_a_run_under_a_prefix_gets_the_prefix_s_environment() -> None:
    code = "import os; print(os.environ['JOBSUITE_TREE_PROBE'])"
    done = CURRENT.run(*_once(code), prefix=("env", "JOBSUITE_TREE_PROBE=seen"))
    assert done.stdout.splitlines()[0] == "seen"


def test_output_is_the_stdout_of_a_run() -> None:
    assert CURRENT.output(*_once("print(6 * 7)")).splitlines()[0] == "42"


def test_a_failed_run_names_the_module_and_shows_its_stderr() -> None:
    code = "import sys; sys.exit('the probe broke')"
    with pytest.raises(RuntimeError, match=r"(?s)^timeit in .* exited 1:\n.*the probe broke"):
        CURRENT.run(*_once(code))


def _once(code: str) -> tuple[str, ...]:
    """`python -m timeit` running `code` once: a module any tree can run that runs code."""
    return ("timeit", "-n", "1", "-r", "1", code)
