"""The audit read model on both backends (`state_settings`: SQLite in AUDIT_DIR, or tables in
a fresh PostgreSQL database with STATE_URL), opened only through `services.audit.model`:
recording, every query, prune, rebuild, recorded_head; and PostgreSQL answering every query
exactly as SQLite does for the same log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.audit.model import (
    ReadModelReader,
    ReadModelWriter,
    open_queries,
    rebuild_read_model,
    recorded_head,
)
from services.audit.recorder import Entry, Recorder, rebuild
from services.audit.trust import PublisherPolicy
from shared.config import Settings
from shared.messages import Event, utc_now
from tests.support.audit import make_event, new_job_id
from tests.support.postgres import query


@pytest.fixture
def recorder(state_settings: Settings) -> Iterator[Recorder]:
    r = Recorder.open(state_settings)
    yield r
    r.close()


@pytest.fixture
def reader(state_settings: Settings) -> Iterator[ReadModelReader]:
    q = open_queries(state_settings)
    yield q
    q.close()


@contextmanager
def new_reader(settings: Settings) -> Iterator[ReadModelReader]:
    """A reader opened now: a SQLite reader's connection stays on the file it first opened,
    which a rebuild replaces (the service is stopped for one)."""
    q = open_queries(settings)
    try:
        yield q
    finally:
        q.close()


def entries(*events: Event) -> list[Entry]:
    return [("events", e) for e in events]


def a_job_life(job_id: str, job_type: str = "resize", **fields: Any) -> list[Event]:
    return [
        make_event("job.submitted", job_id, job_type=job_type, **fields),
        make_event("job.started", job_id, job_type=job_type, seconds=1, **fields),
        make_event("job.succeeded", job_id, job_type=job_type, seconds=2, outputs=["o"], **fields),
    ]


def test_a_jobs_events_are_folded_and_read_back(
    recorder: Recorder, reader: ReadModelReader
) -> None:
    job_id = new_job_id()
    records = recorder.record(entries(*reversed(a_job_life(job_id, client="ann"))))

    assert [r.seq for r in records] == [1, 2, 3]
    job = reader.job(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.outputs, job.client) == ("succeeded", 1, ["o"], "ann")
    assert [e.event for e in job.events] == ["job.submitted", "job.started", "job.succeeded"]
    assert reader.job(new_job_id()) is None
    assert reader.head_seq() == 3
    assert [e["seq"] for e in reader.events(since=1, limit=5)] == [2, 3]


def test_an_event_is_recorded_once_and_a_crash_before_the_model_is_caught_up(
    recorder: Recorder, state_settings: Settings, reader: ReadModelReader
) -> None:
    job_id = new_job_id()
    life = a_job_life(job_id)
    assert len(recorder.record(entries(life[0], life[0]))) == 1
    assert recorder.model.known_event_ids([life[0].event_id, life[1].event_id]) == {
        life[0].event_id
    }
    # The log gets the rest, the process dies before the read model does.
    recorder.audit_log.append([("events", e.model_dump(mode="json")) for e in life[1:]], "t")
    recorder.close()

    again = Recorder.open(state_settings)
    try:
        assert again.model.head_seq == 3
        assert again.record(entries(*life)) == []
    finally:
        again.close()
    job = reader.job(job_id)
    assert job is not None and job.status == "succeeded"
    assert reader.stats()["events"] == 3


def test_jobs_are_paged_newest_first_and_filtered(
    recorder: Recorder, reader: ReadModelReader
) -> None:
    ids = [new_job_id() for _ in range(5)]
    for i, job_id in enumerate(ids):
        life = a_job_life(job_id, "mail" if i % 2 else "resize", client=f"c{i % 2}")
        recorder.record(entries(*life[: 3 if i < 3 else 2]))

    def page(**filters: Any) -> tuple[list[str], int | None]:
        args: dict[str, Any] = {"status": None, "job_type": None, "since": None}
        args |= {"limit": 10, "before": None} | filters
        found, cursor = reader.jobs(**args)
        return [j.id for j in found], cursor

    first, cursor = page(limit=2)
    assert first == [ids[4], ids[3]]
    second, cursor = page(limit=2, before=cursor)
    third, end = page(limit=2, before=cursor)
    assert second + third == [ids[2], ids[1], ids[0]] and end is None
    assert set(page(status="started")[0]) == {ids[3], ids[4]}
    assert set(page(job_type="mail")[0]) == {ids[1], ids[3]}
    assert set(page(client="c1")[0]) == {ids[1], ids[3]}
    assert page(id_prefix=ids[2][:8])[0] == [ids[2]]
    # The shortest prefix with a letter in it: an all-digit one reads the same in upper case.
    lettered = next(ids[2][:n] for n in range(8, 37) if ids[2][:n].upper() != ids[2][:n])
    assert page(id_prefix=lettered.upper())[0] == []  # exactly, case and all
    assert page(since=utc_now() + timedelta(minutes=1))[0] == []
    assert reader.clients() == ["c0", "c1"]
    assert reader.job_types() == ["mail", "resize"]


def test_follow_ups_workers_and_rates(recorder: Recorder, reader: ReadModelReader) -> None:
    parent, child = new_job_id(), new_job_id()
    recorder.record(entries(*a_job_life(parent), *a_job_life(child, "mail", parent_id=parent)))

    assert [j.id for j in reader.follow_ups(parent)] == [child]
    assert reader.follow_ups(child) == []
    [worker] = reader.workers()
    assert (worker["service"], worker["instance"], worker["types"]) == (
        "test",
        "test:1",
        ["mail", "resize"],
    )
    assert (worker["done"], worker["failed"], worker["last_event"]) == (2, 0, "job.succeeded")
    since = utc_now() - timedelta(minutes=1)
    assert reader.rates(since) == {
        "resize": {"submitted": 1, "finished": 1},
        "mail": {"submitted": 1, "finished": 1},
    }
    assert reader.rates(utc_now() + timedelta(minutes=1)) == {}


def test_stats_count_refusals_apart_and_failures_by_reason(
    recorder: Recorder, reader: ReadModelReader
) -> None:
    failed, dead = new_job_id(), new_job_id()
    recorder.record(
        entries(
            *a_job_life(new_job_id()),
            make_event("job.failed", failed, job_type="mail", error=("invalid_params", "to")),
            make_event("job.failed", dead, error=("scripted", "boom")),
            make_event("job.dead", dead, seconds=1, error=("rejected", "from q")),
            make_event("job.rejected", new_job_id(), error=("too_large", "why")),
        )
    )
    stats = reader.stats()

    assert stats["jobs"] == 3
    assert stats["by_type"] == {"resize": {"succeeded": 1, "dead": 1}, "mail": {"failed": 1}}
    assert {(r["status"], r["kind"], r["count"]) for r in stats["failure_reasons"]} == {
        ("failed", "invalid_params", 1),
        ("dead", "scripted", 1),
    }
    assert stats["dead_reasons"] == {"rejected": 1}
    assert stats["rejected"] == {
        "submissions": 1,
        "by_type": {"resize": 1},
        "by_kind": {"too_large": 1},
    }
    assert (stats["events"], stats["head_seq"]) == (7, 7)


def test_refused_events_are_listed_but_not_folded(
    state_settings: Settings, reader: ReadModelReader
) -> None:
    recorder = Recorder.open(state_settings)
    recorder.policy = PublisherPolicy({"resizer": frozenset({"job.started"})})
    job_id = new_job_id()
    started, forged = a_job_life(job_id)[1:]
    try:
        recorder.record([("events", started, "resizer"), ("events", forged, "resizer")])
    finally:
        recorder.close()

    job = reader.job(job_id)
    assert job is not None and job.status == "started"
    assert [e.refused is not None for e in job.events] == [False, True]
    assert reader.workers()[0]["done"] == 0
    assert reader.rates(utc_now() - timedelta(minutes=1)) == {}


def test_rows_older_than_the_retention_are_pruned(
    recorder: Recorder, reader: ReadModelReader
) -> None:
    old, fresh = new_job_id(), new_job_id()
    recorder.clock = lambda: utc_now() - timedelta(days=40)
    recorder.record(entries(*a_job_life(old)))
    recorder.clock = utc_now
    recorder.record(entries(*a_job_life(fresh)))

    assert recorder.model.prune(utc_now() - timedelta(days=30)) == 1
    assert reader.job(old) is None
    assert reader.job(fresh) is not None
    assert reader.stats()["events"] == 3


def test_recorded_head_follows_what_the_model_applied(
    recorder: Recorder, state_settings: Settings
) -> None:
    assert recorded_head(state_settings) in (None, 0)  # nothing applied yet
    recorder.record(entries(*a_job_life(new_job_id())))
    assert recorded_head(state_settings) == 3
    assert recorded_head(state_settings, state_settings.audit_dir / "log") == 3


def test_rebuild_recreates_the_model_from_the_log(
    recorder: Recorder, state_settings: Settings, reader: ReadModelReader
) -> None:
    ids = [new_job_id() for _ in range(20)]
    for job_id in ids:
        recorder.record(entries(*a_job_life(job_id)))
    before = reader.job(ids[7])
    stats = reader.stats()
    recorder.model.prune(utc_now() + timedelta(days=1))  # the model loses everything
    recorder.close()
    assert reader.stats()["jobs"] == 0

    assert rebuild(state_settings) == 60
    with new_reader(state_settings) as after:
        assert after.job(ids[7]) == before
        assert after.stats() == stats
    again = Recorder.open(state_settings)  # and the writer picks up where the rebuild stopped
    assert again.model.head_seq == 60
    again.close()


def test_readers_see_the_old_model_until_a_rebuild_is_in_place(
    recorder: Recorder, state_settings: Settings, reader: ReadModelReader
) -> None:
    kept = new_job_id()
    recorder.record(entries(*a_job_life(kept)))
    recorder.close()
    seen: dict[str, Any] = {}

    def fill(model: ReadModelWriter) -> int:
        model.apply([])  # nothing: the rebuilt model is empty
        seen["during"] = reader.stats()["jobs"]
        return 0

    assert rebuild_read_model(state_settings, fill) == 0
    assert seen["during"] == 1
    with new_reader(state_settings) as after:
        assert after.stats()["jobs"] == 0 and after.job(kept) is None


def test_a_failed_rebuild_leaves_the_model_as_it_was(
    recorder: Recorder, state_settings: Settings, reader: ReadModelReader
) -> None:
    kept = new_job_id()
    recorder.record(entries(*a_job_life(kept)))
    recorder.close()

    def fill(model: ReadModelWriter) -> int:
        raise RuntimeError("the disk is gone")

    with pytest.raises(RuntimeError):
        rebuild_read_model(state_settings, fill)
    assert reader.job(kept) is not None
    if state_settings.state_url:  # and no scratch tables are left behind
        tables = query(state_settings.state_url, "SELECT tablename FROM pg_tables")
        assert not [t for (t,) in tables if "rebuild" in str(t)]


# --- PostgreSQL only ----------------------------------------------------------------------


def answers(reader: ReadModelReader, ids: list[str]) -> dict[str, Any]:
    """Every question the API asks, with the answers."""
    since = utc_now() - timedelta(days=1)
    page = {"status": None, "job_type": None, "since": None, "limit": 3, "before": None}
    return {
        "jobs": [reader.job(i) for i in ids],
        "page": reader.jobs(**page),  # type: ignore[arg-type]
        "failed": reader.jobs(**page | {"status": "failed"}),  # type: ignore[arg-type]
        "recent": reader.jobs(**page | {"since": since, "limit": 50}),  # type: ignore[arg-type]
        "prefix": reader.jobs(**page, id_prefix=ids[0][:4]),  # type: ignore[arg-type]
        "follow_ups": reader.follow_ups(ids[0]),
        "clients": reader.clients(),
        "job_types": reader.job_types(),
        "workers": reader.workers(),
        "rates": reader.rates(since),
        "events": reader.events(since=2, limit=100),
        "stats": reader.stats(),
        "head_seq": reader.head_seq(),
    }


def test_postgres_answers_every_query_as_sqlite_does(postgres_url: str, tmp_path: Path) -> None:
    at = utc_now()
    ids = [new_job_id() for _ in range(6)]
    events = [
        *a_job_life(ids[0], client="ann"),
        *a_job_life(ids[1], "mail", parent_id=ids[0], client="ann"),
        make_event("job.started", ids[2], job_type="render"),
        make_event("job.failed", ids[2], job_type="render", seconds=1, error=("boom", "x")),
        make_event("job.failed", ids[3], error=("scripted", "boom")),
        make_event("job.dead", ids[3], seconds=1, error=("rejected", "from q")),
        make_event("job.rejected", ids[4], error=("too_large", "why"), client="bob"),
        make_event("job.retrying", ids[5], job_type="mail"),
        make_event("job.deleted", ids[0], seconds=60, client="ann"),
    ]
    found = []
    for backend, url in (("sqlite", ""), ("postgres", postgres_url)):
        settings = Settings(
            audit_dir=tmp_path / backend, state_dir=tmp_path / f"{backend}-state", state_url=url
        )
        recorder = Recorder.open(settings)
        recorder.clock = lambda: at
        for e in events:
            recorder.record(entries(e))
        recorder.close()
        reader = open_queries(settings)
        found.append(answers(reader, ids))
        reader.close()

    sqlite, postgres = found
    assert postgres == sqlite
    assert sqlite["stats"]["jobs"] == 5 and sqlite["follow_ups"][0].id == ids[1]


def test_each_namespace_has_a_read_model_of_its_own(postgres_url: str, tmp_path: Path) -> None:
    def settings_of(namespace: str) -> Settings:
        return Settings(
            audit_dir=tmp_path / (namespace or "default"),
            state_url=postgres_url,
            namespace=namespace,
        )

    def listed(namespace: str) -> list[str]:
        reader = open_queries(settings_of(namespace))
        try:
            found = reader.jobs(status=None, job_type=None, since=None, limit=9, before=None)
        finally:
            reader.close()
        return [j.id for j in found[0]]

    # "rebuild": its live tables must not be the default namespace's rebuild scratch.
    namespaces = ["", "ci-1", "rebuild", "x" * 80]
    ids = {ns: new_job_id() for ns in namespaces}
    for ns, job_id in ids.items():
        recorder = Recorder.open(settings_of(ns))
        recorder.record(entries(*a_job_life(job_id)))
        recorder.close()
    assert rebuild(settings_of("")) == 3

    assert {ns: listed(ns) for ns in namespaces} == {ns: [i] for ns, i in ids.items()}
    tables = {str(t) for (t,) in query(postgres_url, "SELECT tablename FROM pg_tables")}
    assert {"audit_events", "audit_jobs", "audit_meta", "audit_ci-1_events"} <= tables
