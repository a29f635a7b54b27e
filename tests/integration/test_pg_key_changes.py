"""API keys in PostgreSQL kept by the process that checks them (shared/state/pg_key_changes.py):
no round trip per request while the listener hears, every change dropping what was kept
within moments, whoever made it, and every key read from the database while the listener is
cut off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest

from shared.config import Settings
from shared.state import open_api_keys
from shared.state.keys import ApiKey
from shared.state.pg_key_changes import FRESH_S, HEARTBEAT_S, KeyChanges
from shared.state.pg_keys import MIGRATIONS, STORE, PostgresApiKeyStore
from shared.state.postgres import open_pool
from tests.support.postgres import query
from tests.support.tcpproxy import TcpProxy

T = TypeVar("T")
SOON_S = 0.5  # a change heard by a listener that hears: milliseconds, with room to spare


class Reads:
    """A store whose reads of a key by its secret are counted."""

    def __init__(self, store: PostgresApiKeyStore) -> None:
        self.store = store
        self.count = 0
        real = store._one

        def counted(column: str, value: str) -> ApiKey | None:
            if column == "hash":
                self.count += 1
            return real(column, value)

        store._one = counted  # type: ignore[method-assign]


def within(seconds: float, call: Callable[[], T], ok: Callable[[T], bool]) -> tuple[T, float]:
    """`call()` again until `ok` says yes; its answer and how long that took (the last answer
    when it never did)."""
    started = time.monotonic()
    while True:
        answer = call()
        took = time.monotonic() - started
        if ok(answer) or took > seconds:
            return answer, took
        time.sleep(0.005)


def kept(reads: Reads, secret: str) -> None:
    """Wait until the key of `secret` is served without a read."""

    def served_unread() -> bool:
        before = reads.count
        reads.store.authenticate(secret)
        return reads.count == before

    _answer, took = within(5, served_unread, bool)
    assert took < 5, "the key was never kept"


@pytest.fixture
def stores(postgres_url: str) -> Iterator[tuple[Reads, PostgresApiKeyStore]]:
    """A gateway's key store (its reads counted) and the CLI's, on one database."""
    settings = Settings(state_url=postgres_url)
    gateway, cli = open_api_keys(settings), open_api_keys(settings)
    assert isinstance(gateway, PostgresApiKeyStore) and isinstance(cli, PostgresApiKeyStore)
    yield Reads(gateway), cli
    gateway.close()
    cli.close()


def test_a_kept_key_costs_no_read_and_every_change_drops_it_at_once(
    stores: tuple[Reads, PostgresApiKeyStore], postgres_url: str
) -> None:
    reads, cli = stores
    gateway = reads.store
    _alice, secret = cli.create("alice")
    kept(reads, secret)
    before = reads.count
    for _ in range(200):
        found = gateway.authenticate(secret)
        assert found is not None and found.revoked_at is None
    assert reads.count == before, "a kept key was read again"

    cli.revoke("alice")  # by `jobsuite keys revoke`
    found, took = within(SOON_S, lambda: gateway.authenticate(secret), lambda k: bool(k.revoked_at))
    assert found is not None and found.revoked_at is not None, "the revocation was never seen"
    assert took < SOON_S

    _bob, bob = cli.create("bob")
    kept(reads, bob)
    query(postgres_url, "UPDATE api_keys SET admin = true WHERE name = 'bob'")  # by hand
    found, _took = within(SOON_S, lambda: gateway.authenticate(bob), lambda k: bool(k and k.admin))
    assert found is not None and found.admin, "a change made with psql was never seen"

    kept(reads, bob)
    query(postgres_url, "DELETE FROM api_keys")
    gone, _took = within(SOON_S, lambda: gateway.authenticate(bob), lambda k: k is None)
    assert gone is None, "a deleted key was still let in"


def test_while_the_listener_is_cut_off_keys_are_read_and_kept_again_once_it_is_back(
    postgres_url: str,
) -> None:
    """Its connection silent (a dead path, a pooler that drops LISTEN): within FRESH_S every
    key is read from the database, so a revocation meanwhile is in force; a new connection
    brings the keeping back."""
    pool = open_pool(postgres_url, migrations=MIGRATIONS, store=STORE, what="the API key store")
    cli = open_api_keys(Settings(state_url=postgres_url))
    with TcpProxy(upstream_port=5432) as proxy:
        changes = KeyChanges(proxy.url(postgres_url))
        reads = Reads(PostgresApiKeyStore(pool, changes))  # its reads go straight to the server
        try:
            _alice, secret = cli.create("alice")
            kept(reads, secret)
            proxy.blackhole()
            _generation, took = within(FRESH_S + 2, changes.generation, lambda g: g is None)
            # The last heartbeat came back up to HEARTBEAT_S before the silence began.
            assert FRESH_S - HEARTBEAT_S - 0.1 < took < FRESH_S + 1, "kept on after the silence"
            cli.revoke("alice")
            found = reads.store.authenticate(secret)  # the notification cannot come through
            assert found is not None and found.revoked_at is not None

            proxy.reset()  # the listener's connection ends; it connects again
            proxy.pass_through()
            _cli_bob, bob = cli.create("bob")
            kept(reads, bob)
        finally:
            reads.store.close()
            cli.close()


def test_without_the_trigger_nothing_is_kept(
    stores: tuple[Reads, PostgresApiKeyStore], postgres_url: str
) -> None:
    """A trigger dropped or disabled by hand (or never made: no privilege) would leave the
    listener deaf to changes: its heartbeats stop with it, so every key is read again."""
    reads, cli = stores
    _alice, secret = cli.create("alice")
    kept(reads, secret)
    query(postgres_url, "ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed")
    cli.revoke("alice")
    found, took = within(FRESH_S + 2, lambda: reads.store.authenticate(secret), _revoked)
    assert found is not None and found.revoked_at is not None and took < FRESH_S + 1

    query(postgres_url, "DROP TRIGGER api_keys_changed ON api_keys")
    store = open_api_keys(Settings(state_url=postgres_url))  # a process starting makes it again
    try:
        made = query(postgres_url, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")
        assert made == [(2,)]
        _bob, bob = cli.create("bob")
        kept(reads, bob)
    finally:
        store.close()


def _revoked(key: ApiKey | None) -> bool:
    return key is not None and key.revoked_at is not None


def test_a_change_made_while_the_trigger_was_off_is_not_forgotten_once_it_is_back(
    stores: tuple[Reads, PostgresApiKeyStore], postgres_url: str
) -> None:
    """Disabled, a key revoked, enabled again: nothing told of the revocation, yet what was
    kept before is dropped (the trigger's row changed), and the revoked key stays refused."""
    reads, cli = stores
    _alice, secret = cli.create("alice")
    kept(reads, secret)
    query(postgres_url, "ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed")
    cli.revoke("alice")
    query(postgres_url, "ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_changed")
    found, took = within(FRESH_S + 2, lambda: reads.store.authenticate(secret), _revoked)
    assert _revoked(found) and took < FRESH_S + 1
    deadline = time.monotonic() + FRESH_S + 1  # past any lapse, the listener hearing again
    while time.monotonic() < deadline:
        assert _revoked(reads.store.authenticate(secret)), "the old key came back"
        time.sleep(0.05)


def test_a_change_in_a_replica_session_is_heard_too(
    stores: tuple[Reads, PostgresApiKeyStore], postgres_url: str
) -> None:
    """A logical replication's apply worker, or pg_restore --disable-triggers, writes with
    session_replication_role = replica: the trigger fires always, so it is heard at once."""
    reads, cli = stores
    _alice, secret = cli.create("alice")
    kept(reads, secret)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("SET session_replication_role = replica")
        db.execute("UPDATE api_keys SET revoked_at = now()::text WHERE name = 'alice'")
    found, took = within(SOON_S, lambda: reads.store.authenticate(secret), _revoked)
    assert _revoked(found) and took < SOON_S


NOT_OURS = {
    "a function that no longer notifies": [
        "CREATE OR REPLACE FUNCTION jobsuite_api_keys_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
    ],
    "a trigger of the name for statements, not rows": [
        "DROP TRIGGER api_keys_changed ON api_keys",
        "CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys"
        " FOR EACH STATEMENT EXECUTE FUNCTION jobsuite_api_keys_changed()",
        "ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_changed",
    ],
}


@pytest.mark.parametrize("change", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_triggers_changed_by_hand_count_as_none(
    stores: tuple[Reads, PostgresApiKeyStore], postgres_url: str, change: list[str]
) -> None:
    """A logical replication's apply worker fires row triggers only: a statement trigger
    would leave its changes untold."""
    reads, cli = stores
    _alice, secret = cli.create("alice")
    kept(reads, secret)
    for statement in change:
        query(postgres_url, statement)
    cli.revoke("alice")
    found, took = within(FRESH_S + 2, lambda: reads.store.authenticate(secret), _revoked)
    assert _revoked(found) and took < FRESH_S + 1
    _bob, bob = cli.create("bob")
    time.sleep(FRESH_S)  # heartbeats would have come back by now, were they sent
    before = reads.count
    reads.store.authenticate(bob)
    reads.store.authenticate(bob)
    assert reads.count == before + 2, "a key was kept with a function that tells nothing"
