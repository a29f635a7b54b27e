"""The shared state in PostgreSQL (STATE_URL): replicas racing for one Idempotency-Key,
replicas migrating one database at once, an outage as StateError, a URL's password never
shown, and the gateway answering one job for a key submitted twice."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.errors import StateError
from shared.state import (
    AcceptedJob,
    Claim,
    Reservation,
    SubmissionLedger,
    open_api_keys,
    open_checkpoints,
    open_sent_mail,
    open_submissions,
    postgres,
)
from shared.state.postgres import MIGRATION_LOCK, TCP_DEFAULTS, Pool, open_pool
from tests.support.gateway import in_process_gateway
from tests.support.postgres import query
from tests.support.tcpproxy import TcpProxy
from tests.unit.test_gateway_in_doubt import RENDER, ScriptedPublisher

T = TypeVar("T")
OPENERS = (open_submissions, open_sent_mail, open_checkpoints, open_api_keys)


def at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """`work(i)` for i in range(count), each on its own thread, started together."""
    start = threading.Barrier(count)

    def run(i: int) -> T:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def until_up(
    call: Callable[[], T], ok: Callable[[T], bool] = lambda _r: True, within_s: float = 40
) -> T:
    """`call()` again until it raises no StateError and its answer is `ok`."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            answer = call()
            if ok(answer) or time.monotonic() > deadline:
                return answer
        except StateError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@pytest.fixture
def pg(postgres_url: str) -> Settings:
    return Settings(state_url=postgres_url)


@pytest.fixture
def two_replicas(pg: Settings) -> Iterator[tuple[SubmissionLedger, SubmissionLedger]]:
    """Two gateway replicas' ledgers: two pools on one database."""
    first, second = open_submissions(pg), open_submissions(pg)
    yield first, second
    first.close()
    second.close()


def test_two_replicas_racing_one_idempotency_key_make_exactly_one_winner(
    two_replicas: tuple[SubmissionLedger, SubmissionLedger],
) -> None:
    for round_ in range(20):
        key = f"order-{round_}"
        claims = at_once(8, partial(_reserve, two_replicas, key))
        winners = [c for c in claims if c.claim is Claim.NEW]
        assert len(winners) == 1, claims
        assert {c.claim for c in claims} - {Claim.NEW} == {Claim.IN_PROGRESS}
        assert {c.job_id for c in claims} == {winners[0].job_id}  # every loser names it


def _reserve(replicas: tuple[SubmissionLedger, SubmissionLedger], key: str, i: int) -> Reservation:
    return replicas[i % 2].reserve(key, "fp", f"{key}-job-{i}")


def test_a_key_released_by_one_replica_is_free_on_the_other(
    two_replicas: tuple[SubmissionLedger, SubmissionLedger],
) -> None:
    first, second = two_replicas
    assert first.reserve("k", "fp", "job-1").claim is Claim.NEW
    assert second.reserve("k", "fp", "job-2").claim is Claim.IN_PROGRESS
    first.release("k", "job-1")
    assert second.reserve("k", "fp", "job-3").claim is Claim.NEW


def test_replicas_reserving_and_releasing_one_key_never_see_it_vanish(
    two_replicas: tuple[SubmissionLedger, SubmissionLedger],
) -> None:
    """A publish that fails releases its key while another replica's insert lost to it: the
    loser reads no row, and tries again rather than failing."""

    def churn(i: int) -> set[Claim]:
        seen = set()
        for n in range(40):
            claim = _reserve(two_replicas, "hot", i * 100 + n)
            seen.add(claim.claim)
            if claim.claim is Claim.NEW:
                two_replicas[i % 2].release("hot", claim.job_id)
        return seen

    seen = set().union(*at_once(8, churn))
    assert seen <= {Claim.NEW, Claim.IN_PROGRESS} and Claim.NEW in seen


def test_replicas_migrating_a_new_database_at_once_apply_each_version_once(
    pg: Settings,
) -> None:
    def open_all(i: int) -> None:
        opener = OPENERS[i % len(OPENERS)]
        opener(pg).close()

    at_once(12, open_all)
    versions = query(pg.state_url, "SELECT store, version FROM jobsuite_schema ORDER BY store")
    assert versions == [("api_keys", 1), ("checkpoints", 1), ("sent_mail", 2), ("submissions", 1)]
    triggers = query(
        pg.state_url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
    )  # made once (pg_key_changes.install_trigger)
    assert triggers == [("api_keys_changed",), ("api_keys_truncated",)]
    tables = query(
        pg.state_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
    assert [t for (t,) in tables] == [
        "accepted_jobs",
        "api_keys",
        "checkpoints",
        "idempotency_keys",
        "jobsuite_schema",
        "sending",
        "sent",
    ]


def _open_every_store(url: str) -> None:
    for opener in OPENERS:
        opener(Settings(state_url=url)).close()


def test_processes_migrating_a_new_database_at_once_all_start(pg: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_open_every_store, args=(pg.state_url,)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert len(query(pg.state_url, "SELECT * FROM jobsuite_schema")) == len(OPENERS)


def test_a_database_newer_than_this_release_is_refused(pg: Settings) -> None:
    open_submissions(pg).close()
    query(pg.state_url, "UPDATE jobsuite_schema SET version = 99 WHERE store = 'submissions'")
    with pytest.raises(StateError, match="schema version 99 is newer than this release"):
        open_submissions(pg)


def test_migrations_wait_for_the_advisory_lock(pg: Settings) -> None:
    import psycopg

    with psycopg.connect(pg.state_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        opened: list[object] = []
        t = threading.Thread(target=lambda: opened.append(open_sent_mail(pg)))
        t.start()
        t.join(1)
        assert t.is_alive() and not opened  # waiting on the lock
    t.join(10)
    assert opened
    opened[0].close()  # type: ignore[attr-defined]


def test_an_unreachable_server_is_a_state_error_without_the_password() -> None:
    url = "postgresql://jobsuite:s3cret-pw@127.0.0.1:1/state?connect_timeout=1"
    with pytest.raises(StateError) as e:
        open_submissions(Settings(state_url=url))
    message = str(e.value)
    assert message.startswith("cannot open the submissions database at ")
    assert "postgresql://jobsuite:***@127.0.0.1:1/state" in message
    assert "s3cret-pw" not in message


def test_an_outage_is_a_state_error_and_the_store_recovers(postgres_url: str) -> None:
    with TcpProxy(upstream_port=5432) as proxy:
        url = proxy.url(postgres_url)
        ledger = open_submissions(Settings(state_url=url))
        try:
            assert ledger.reserve("k", "fp", "job-1").claim is Claim.NEW
            proxy.reset()
            with pytest.raises(StateError, match="cannot reserve an idempotency key"):
                ledger.reserve("k2", "fp", "job-2")
            with pytest.raises(StateError, match="cannot read the accepted jobs"):
                ledger.find("job-1")
            proxy.pass_through()
            # The pool reconnects with a growing back-off: back within its longest step.
            assert until_up(lambda: ledger.reserve("k", "fp", "job-3")).claim is Claim.IN_PROGRESS
        finally:
            ledger.close()


_OTHER_BACKENDS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_connections_the_server_ended_while_idle_are_replaced_unseen(pg: Settings) -> None:
    """A server restart or pg_terminate_backend ends the pooled connections while they sit
    idle: the next reads and writes take fresh ones, with no StateError on the way."""
    keys, ledger = open_api_keys(pg), open_submissions(pg)
    try:
        _r, secret = keys.create("alice")
        ledger.accepted_jobs([AcceptedJob("j1", "render", datetime.now(UTC), "alice")])
        assert keys.authenticate(secret) is not None and ledger.find("j1") is not None
        assert query(pg.state_url, f"SELECT count(*) {_OTHER_BACKENDS}")[0][0] >= 2
        query(pg.state_url, f"SELECT pg_terminate_backend(pid) {_OTHER_BACKENDS}")
        deadline = time.monotonic() + 10
        while query(pg.state_url, f"SELECT count(*) {_OTHER_BACKENDS}")[0][0]:
            assert time.monotonic() < deadline, "the backends did not end"
            time.sleep(0.05)
        found = keys.authenticate(secret)
        assert found is not None and found.name == "alice"
        assert ledger.find("j1") is not None
        ledger.accepted_jobs([AcceptedJob("j2", "render", datetime.now(UTC), "alice")])
        assert ledger.mails_since("alice", datetime.now(UTC) - timedelta(hours=1)) == 0
        assert keys.revoke("alice").revoked_at is not None
    finally:
        keys.close()
        ledger.close()


def test_a_connection_is_asked_with_a_round_trip_only_after_a_pause(
    pg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load (a connection back within RECENTLY_USED_S, nothing on its socket) the
    check costs no round trip; after a pause, when a silent drop may have happened, it does."""
    checked: list[object] = []
    real = ConnectionPool.check_connection
    monkeypatch.setattr(postgres, "RECENTLY_USED_S", 0.5)
    monkeypatch.setattr(
        ConnectionPool, "check_connection", staticmethod(lambda db: (checked.append(db), real(db)))
    )
    ledger = open_submissions(pg)
    try:
        ledger.find("j0")  # opened, migrated and used: in the pool, just back
        checked.clear()
        for _ in range(5):
            ledger.find("j0")
        assert checked == []
        time.sleep(0.6)
        ledger.find("j0")
        assert len(checked) == 1
    finally:
        ledger.close()


def test_after_a_silent_failover_a_pool_loses_one_statement_not_one_per_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's address moves to another host right after the pooled connections were
    used: nothing tells them until one sends (and meets an RST). That statement fails; the
    pool is then drained and refilled, so the next ones do not meet the other dead
    connections in turn."""
    monkeypatch.setattr(postgres, "RECENTLY_USED_S", 60.0)  # "just used", however slow CI is
    with TcpProxy(upstream_port=5432) as proxy:
        pool = open_pool(proxy.url(postgres_url), migrations=[], store="failover", what="a pool")
        try:
            with ExitStack() as held:  # three connections, all used just now
                for _ in range(3):
                    held.enter_context(pool.statement("warm up")).execute("SELECT 1")
            assert proxy.fail_over() >= 3
            outcomes = [_one_select(pool) for _ in range(4)]
            assert outcomes == ["failed", "ok", "ok", "ok"]
        finally:
            pool.close()


def test_statements_failing_on_one_dead_path_drain_the_pool_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each thread that had a connection out when the path died fails a statement; the first
    drains, the others do not close the connections that drain just made."""
    drains: list[float] = []

    class Drained:
        def drain(self) -> None:
            drains.append(time.monotonic())

    pool = Pool(Drained(), "postgresql://x", postgres._Liveness())  # type: ignore[arg-type]
    for _ in range(3):
        pool._drain_once()
    assert len(drains) == 1
    monkeypatch.setattr(postgres, "DRAINED_LATELY_S", 0.0)  # a later, separate failure
    pool._drain_once()
    assert len(drains) == 2


def _one_select(pool: Pool) -> str:
    try:
        with pool.statement("read") as db:
            db.execute("SELECT 1")
    except StateError:
        return "failed"
    return "ok"


def test_connections_get_tcp_keepalives_and_a_user_timeout_unless_the_url_sets_them(
    postgres_url: str,
) -> None:
    """A dead path ends a waiting connection within about half a minute, not the kernel's
    15 minutes (unacknowledged data) or 2 hours (silence before the first keepalive)."""
    pool = open_pool(postgres_url, migrations=[], store="tcp", what="a pool")
    own = open_pool(f"{postgres_url}?keepalives_idle=60", migrations=[], store="tcp", what="a pool")
    try:
        with pool.statement("read the options") as db:
            given = db.info.get_parameters()
        assert {k: given.get(k) for k in TCP_DEFAULTS} == {
            k: str(v) for k, v in TCP_DEFAULTS.items()
        }
        with own.statement("read the options") as db:
            assert db.info.get_parameters()["keepalives_idle"] == "60"
    finally:
        pool.close()
        own.close()


def test_many_jobs_accepted_together_are_one_statement_past_the_parameter_limit(
    pg: Settings,
) -> None:
    """A batch of any size: 15,000 jobs would be 75,000 parameters as rows of values."""
    ledger = open_submissions(pg)
    try:
        now = datetime.now(UTC)
        ledger.accepted_jobs([AcceptedJob(f"b{i}", "render", now, "bulk", 1) for i in range(15000)])
        assert ledger.mails_since("bulk", now - timedelta(minutes=1)) == 15000
        assert ledger.find("b14999") == AcceptedJob("b14999", "render", now, "bulk", 1)
    finally:
        ledger.close()


def test_two_key_creations_of_one_name_at_once_give_one_key(pg: Settings) -> None:
    stores = [open_api_keys(pg) for _ in range(2)]

    def create(i: int) -> str:
        try:
            stores[i % 2].create("alice")
            return "made"
        except StateError as e:
            return str(e)

    outcomes = at_once(6, create)
    assert outcomes.count("made") == 1, outcomes
    for store in stores:
        store.close()


def test_the_gateway_with_state_in_postgres_takes_one_job_for_a_key_sent_twice(
    pg: Settings, tmp_path: Path
) -> None:
    publisher = ScriptedPublisher()
    with in_gateway(publisher, tmp_path, pg.state_url) as http:
        key = {"Idempotency-Key": "order-1"}
        first = http.post("/jobs/render", json=RENDER, headers=key)
        again = http.post("/jobs/render", json=RENDER, headers=key)
        different = {"template": "document", "data": {"blocks": ["another"]}}
        other = http.post("/jobs/render", json=different, headers=key)
    assert (first.status_code, again.status_code) == (202, 202), (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409, other.text
    assert len(publisher.jobs) == 1
    assert query(pg.state_url, "SELECT id FROM accepted_jobs") == [(first.json()["id"],)]
    assert not (tmp_path / "state" / "submissions.sqlite3").exists()


def test_two_gateway_replicas_on_one_database_take_one_job_for_one_key(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two gateway processes' apps, each with its own blob folder and publisher, sharing only
    PostgreSQL; a client sends one key to both at the same moment, five times over."""
    publishers = ScriptedPublisher(), ScriptedPublisher()
    with (
        in_process_gateway(publishers[0], tmp_path / "blobs-a", state_url=postgres_url) as a,
        in_process_gateway(publishers[1], tmp_path / "blobs-b", state_url=postgres_url) as b,
    ):
        for round_ in range(5):
            key = {"Idempotency-Key": f"order-{round_}"}

            def submit(i: int, key: dict[str, str] = key) -> Response:
                return (a, b)[i].post("/jobs/render", json=RENDER, headers=key)

            answers = at_once(2, submit)
            assert {r.status_code for r in answers} <= {202, 409}, [r.text for r in answers]
            ids = {r.json()["id"] for r in answers if r.status_code == 202}
            assert len(ids) == 1, [r.text for r in answers]  # the loser replays it or waits
            later = b.post("/jobs/render", json=RENDER, headers=key)
            assert later.status_code == 202 and later.json()["id"] in ids, later.text
    assert len(publishers[0].jobs) + len(publishers[1].jobs) == 5, "one job per key"


def test_the_gateway_answers_503_while_postgres_is_unreachable(
    postgres_url: str, tmp_path: Path
) -> None:
    publisher = ScriptedPublisher()
    with TcpProxy(upstream_port=5432) as proxy:
        url = proxy.url(postgres_url)
        with in_gateway(publisher, tmp_path, url) as http:
            proxy.reset()
            down = http.post("/jobs/render", json=RENDER, headers={"Idempotency-Key": "k"})
            proxy.pass_through()
            up = until_up(
                lambda: http.post("/jobs/render", json=RENDER, headers={"Idempotency-Key": "k"}),
                ok=lambda r: r.status_code != 503,
            )
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"]
    assert up.status_code == 202, up.text
    assert len(publisher.jobs) == 1


def in_gateway(
    publisher: ScriptedPublisher, tmp_path: Path, url: str
) -> AbstractContextManager[TestClient]:
    return in_process_gateway(publisher, tmp_path / "blobs", state_url=url)


def test_state_url_may_come_from_a_file_and_is_never_in_the_settings_repr(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "state_url"
    secret.write_text("postgresql://jobsuite:s3cret-pw@db:5432/jobsuite?sslmode=require\n")
    settings = Settings.from_env({"STATE_URL_FILE": str(secret)})
    assert settings.state_url == "postgresql://jobsuite:s3cret-pw@db:5432/jobsuite?sslmode=require"
    assert "s3cret-pw" not in repr(settings)
    assert replace(settings, state_url="").state_url == ""
