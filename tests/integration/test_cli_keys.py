"""`jobsuite keys` against a real key store, broker and audit service: the key alone on the
last line, --rotate, list, revoke, the key events in the audit chain, `keys local`."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from cli.app import app
from shared.config import Settings
from shared.state import open_api_keys
from tests.conftest import SpawnFn
from tests.support.audit import audit_env, start_audit
from tests.support.broker import TestBroker
from tests.support.gateway import closed_url
from tests.support.processes import service_env


def jobsuite(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_create_list_revoke_rotate_and_the_audit_hears_of_each(
    settings: Settings, spawn: SpawnFn, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    env = service_env(
        settings,
        COLUMNS="250",
        JOBSUITE_API_KEY=audit.key,
        **audit_env(settings, tmp_path / "audit", audit.port),
    )
    created = jobsuite(env, "keys", "create", "alice", "--expires", "30d", "--mails-per-hour", "5")
    assert created.exit_code == 0, created.output
    key = created.output.splitlines()[-1]
    assert key.startswith("jsk_") and " " not in key
    again = jobsuite(env, "keys", "create", "alice")
    assert again.exit_code == 1 and "use --rotate" in again.output
    rotated = jobsuite(env, "keys", "create", "alice", "--rotate")
    assert rotated.exit_code == 0
    new_key = rotated.output.splitlines()[-1]
    store = open_api_keys(settings)
    assert store.authenticate(key) is None and store.authenticate(new_key) is not None
    store.close()
    listed = jobsuite(env, "keys", "list")
    assert "alice" in listed.output and "active" in listed.output and new_key not in listed.output
    assert jobsuite(env, "keys", "revoke", "alice").exit_code == 0
    assert "revoked" in jobsuite(env, "keys", "list").output
    assert jobsuite(env, "keys", "revoke", "bob").exit_code == 1

    def key_events() -> list[str]:
        page = audit.get("/events", limit=100).json()["events"]
        return [e["event"]["event"] for e in page if e["event"]["job_id"] == "key:alice"]

    audit.wait_for(lambda: len(key_events()) == 3, "three key events")
    assert key_events() == ["key.created", "key.created", "key.revoked"]
    assert audit.get("/jobs").json()["jobs"] == []  # no job rows for keys
    audit.process.stop()
    verified = jobsuite(env, "audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_without_a_broker_the_key_is_made_with_a_warning(settings: Settings) -> None:
    env = service_env(settings, AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F")
    created = jobsuite(env, "keys", "create", "offline")
    assert created.exit_code == 0, created.output
    assert "audit log did not hear of it" in created.output
    assert created.output.splitlines()[-1].startswith("jsk_")


def test_keys_local_saves_a_private_key_file_and_remakes_a_lost_key(
    settings: Settings, broker: TestBroker, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = service_env(settings, HOME=str(home), GATEWAY_URL=closed_url())
    first = jobsuite(env, "keys", "local")
    assert first.exit_code == 0, first.output
    path = Path(first.output.splitlines()[-1])
    assert path == home / ".config" / "jobsuite" / f"{settings.namespace}.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = path.read_text().strip()
    assert jobsuite(env, "keys", "local").exit_code == 0
    assert path.read_text().strip() == saved  # kept while the store knows it
    for leftover in settings.state_dir.glob("api-keys.sqlite3*"):
        leftover.unlink()  # the store lost it
    assert jobsuite(env, "keys", "local").exit_code == 0
    remade = path.read_text().strip()
    store = open_api_keys(settings)
    found = store.authenticate(remade)
    store.close()
    assert remade != saved and found is not None and found.admin and found.name == "local"
