"""How the CLI follows a pipeline, against a scripted gateway: the ids of a chain derived from
its first, `--wait` job after job until one does not succeed, `status` walking up by
`parent_id` and down by the derived ids. (The real thing: tests/e2e/test_readme_pipeline.py.)"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.gateway_client import GatewayClient, GatewayError
from cli.job_commands import read_then
from cli.pipeline import chain, follow, tree
from shared.ids import follow_up_id

FIRST = str(uuid.uuid4())
SECOND = follow_up_id(FIRST)
THIRD = follow_up_id(SECOND)
THEN = {"type": "render", "params": {}, "then": {"type": "mail", "params": {}}}


class Jobs:
    """A gateway whose `GET /jobs/{id}` answers from a script: a record per id, each a list
    of answers given in turn (the last one again and again); unknown ids are a 404."""

    def __init__(self, **answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.removeprefix("/jobs/")
        self.asked.append(job_id)
        script = self.answers.get(job_id, [None])
        record = script.pop(0) if len(script) > 1 else script[0]
        if record is None:
            return httpx.Response(404, json={"detail": f"no job {job_id}"})
        return httpx.Response(200, json={"id": job_id, **record})


def client(jobs: Jobs) -> GatewayClient:
    return GatewayClient("http://gateway.test", transport=httpx.MockTransport(jobs))


def test_a_chain_s_ids_follow_from_its_first() -> None:
    steps = chain(FIRST, "resize", THEN)

    assert [(s.id, s.type) for s in steps] == [
        (FIRST, "resize"),
        (SECOND, "render"),
        (THIRD, "mail"),
    ]
    assert chain(FIRST, "resize", None) == steps[:1]


def test_wait_goes_job_after_job_to_the_last() -> None:
    jobs = Jobs(
        **{
            FIRST: [{"status": "started"}, {"status": "succeeded"}],
            SECOND: [None, {"status": "succeeded"}],  # a 404 until its parent made it
            THIRD: [{"status": "succeeded"}],
        }
    )

    records = follow(client(jobs), [chain(FIRST, "resize", THEN)], timeout=10)

    assert set(records) == {FIRST, SECOND, THIRD}
    assert jobs.asked == [FIRST, FIRST, SECOND, SECOND, THIRD]


def test_wait_stops_at_a_job_that_did_not_succeed() -> None:
    jobs = Jobs(**{FIRST: [{"status": "succeeded"}], SECOND: [{"status": "dead"}]})

    records = follow(client(jobs), [chain(FIRST, "resize", THEN)], timeout=10)

    assert [records[FIRST]["status"], records[SECOND]["status"]] == ["succeeded", "dead"]
    assert THIRD not in records and THIRD not in jobs.asked


def test_wait_names_the_job_it_was_waiting_for_when_time_runs_out() -> None:
    jobs = Jobs(**{FIRST: [{"status": "succeeded"}]})  # the follow-up never comes

    with pytest.raises(GatewayError, match=f"no outcome within 0 s for {SECOND}"):
        follow(client(jobs), [chain(FIRST, "resize", THEN)], timeout=0.5)


def test_status_walks_up_by_parent_id_and_down_by_the_derived_ids() -> None:
    middle = {"id": SECOND, "type": "render", "status": "succeeded", "parent_id": FIRST}
    jobs = Jobs(
        **{
            FIRST: [{"type": "resize", "status": "succeeded"}],
            THIRD: [{"type": "mail", "status": "started", "parent_id": SECOND}],
        }
    )

    steps = tree(client(jobs), middle)

    assert [(s["id"], s["status"]) for s in steps] == [
        (FIRST, "succeeded"),
        (SECOND, "succeeded"),
        (THIRD, "started"),
    ]
    # An unfinished job has made no follow-up yet: nothing is asked below it.
    assert follow_up_id(THIRD) not in jobs.asked


def test_status_of_a_job_alone_is_that_job() -> None:
    alone = {"id": FIRST, "type": "resize", "status": "succeeded"}

    assert tree(client(Jobs()), alone) == [alone]


def test_then_is_json_text_or_a_file(tmp_path: Path) -> None:
    text = '{"type": "mail", "params": {}}'
    (tmp_path / "then.json").write_text(text)

    assert read_then(f"  {text}") == f"  {text}"
    assert read_then(str(tmp_path / "then.json")) == text
    assert read_then(None) is None
