"""Pipelines as the CLI sees them: a job and the follow-ups its `then` chain makes.

A follow-up's id is derived from its parent's (shared/ids.py), so the ids of a whole chain
are known as soon as its first job is accepted: `--wait` follows them to the last job, and
`jobsuite status` finds a job's follow-ups (its parent is in its record, `parent_id`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cli.common import err_console
from cli.gateway_client import TERMINAL, GatewayClient, GatewayError, describe
from shared.ids import follow_up_id
from shared.words import count

_POLL_S = 0.3
MAX_STEPS = 20  # how far `status` walks up or down: more than any chain may hold


@dataclass(frozen=True)
class Step:
    id: str
    type: str


def chain(first_id: str, first_type: str, then: Any) -> list[Step]:
    """The job and each follow-up its `then` (as sent: a dict or None) will make."""
    steps = [Step(first_id, first_type)]
    while isinstance(then, dict):
        steps.append(Step(follow_up_id(steps[-1].id), str(then.get("type", "?"))))
        then = then.get("then")
    return steps


def follow(
    gw: GatewayClient, chains: list[list[Step]], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait for each chain, a job after the other, until its last job finishes or one does
    not succeed (its follow-ups never come). The records of the jobs that finished."""
    deadline = time.monotonic() + timeout
    at = [0] * len(chains)  # the step each chain waits for
    active = set(range(len(chains)))
    records: dict[str, dict[str, Any]] = {}
    noted = False
    total = sum(len(c) for c in chains)
    with err_console.status(f"waiting for {count(total, 'job')}…"):
        while active:
            for i in sorted(active):
                step = chains[i][at[i]]
                response = gw.call("GET", f"/jobs/{step.id}", 200, 404, 503)
                if response.status_code == 503 and not noted:
                    err_console.print(f"note: {describe(response)}; waiting for its result")
                    noted = True
                if response.status_code != 200 or response.json()["status"] not in TERMINAL:
                    continue  # a follow-up is a 404 until its parent has made it
                records[step.id] = response.json()
                if records[step.id]["status"] == "succeeded" and at[i] + 1 < len(chains[i]):
                    at[i] += 1
                else:
                    active.discard(i)
            if active and time.monotonic() > deadline:
                waiting = ", ".join(chains[i][at[i]].id for i in sorted(active))
                raise GatewayError(f"no outcome within {timeout:.0f} s for {waiting}")
            if active:
                time.sleep(_POLL_S)
    return records


def tree(gw: GatewayClient, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The pipeline a job is part of, first job first: its parents (from `parent_id`) and the
    follow-ups made so far (a job's follow-up exists once it has succeeded)."""
    before: list[dict[str, Any]] = []
    parent = record.get("parent_id")
    while parent and len(before) < MAX_STEPS:
        found = _record(gw, parent)
        if found is None:  # not visible, or no longer kept: say what is known
            before.append({"id": parent, "type": "?", "status": "unknown"})
            break
        before.append(found)
        parent = found.get("parent_id")
    after: list[dict[str, Any]] = []
    last = record
    while last.get("status") == "succeeded" and len(after) < MAX_STEPS:
        found = _record(gw, follow_up_id(last["id"]))
        if found is None:
            break
        after.append(found)
        last = found
    return [*reversed(before), record, *after]


def _record(gw: GatewayClient, job_id: str) -> dict[str, Any] | None:
    response = gw.call("GET", f"/jobs/{job_id}", 200, 404, 503)
    return response.json() if response.status_code == 200 else None
