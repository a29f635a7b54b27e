"""What each service's own broker user may do: RabbitMQ's configure/write/read regexes.

One table for compose's init step (`jobsuite broker-users`), the tests' throwaway users and
docs/operations.md. No service user may configure anything: an administrator declares the
topology (`jobsuite declare`, or compose's init step) and the services only check it
(`shared.topology.ensure_topology`), so none can delete a queue or an exchange. Nobody may
publish to `jobs.dead`: only the broker dead-letters, so the audit can believe `audit.dead`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.jobtypes import JOB_TYPES

NOTHING = "^$"


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


def _workers() -> dict[str, list[str]]:
    served: dict[str, list[str]] = {}
    for spec in JOB_TYPES:
        served.setdefault(spec.service, []).append(spec.name)
    return served


WORKERS = _workers()
ROLES = ("gateway", *WORKERS, "audit", "dlq")


def permissions(role: str, namespace: str = "") -> Permissions:
    """The least a role needs on the names of `namespace` (the regexes are anchored)."""
    prefix = re.escape(f"{namespace}.") if namespace else ""

    def names(*alternatives: str) -> str:
        return f"^{prefix}({'|'.join(alternatives)})$"

    if role == "gateway":  # publishes jobs and job.submitted/job.rejected/job.deleted
        return Permissions(NOTHING, names("jobs", "events"), NOTHING)
    if role in WORKERS:  # consumes its queues; publishes follow-ups, retries, events
        queues = [re.escape(f"jobs.{t}") for t in sorted(WORKERS[role])]
        return Permissions(NOTHING, names("jobs", r"jobs\.retry", "events"), names(*queues))
    if role == "audit":  # consumes audit.events and audit.dead; publishes job.dead
        return Permissions(NOTHING, names("events"), names(r"audit\.events", r"audit\.dead"))
    if role == "dlq":  # jobsuite dlq: takes from jobs.dead, replays to jobs, job.replayed
        return Permissions(NOTHING, names("jobs", "events"), names(r"jobs\.dead"))
    raise ValueError(f"unknown broker role {role!r} (known: {', '.join(ROLES)})")
