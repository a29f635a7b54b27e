"""The topology tables in the README and docs/reliability.md name every declared job type,
its queue and the service that runs it, so they cannot drift from shared/jobtypes."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.jobtypes import JOB_TYPES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("page", ["README.md", "docs/reliability.md"])
def test_the_topology_table_names_every_job_type_its_queue_and_service(page: str) -> None:
    jobs_row = next(
        line
        for line in (ROOT / page).read_text().splitlines()
        if line.startswith("| `jobs` (direct)")
    )
    for spec in JOB_TYPES:
        assert f"`{spec.name}`" in jobs_row, (page, spec.name)
        assert f"`jobs.{spec.name}`" in jobs_row, (page, spec.name)
        assert spec.service in jobs_row, (page, spec.service)
