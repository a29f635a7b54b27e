"""API keys for tests: made straight in a test's key store (STATE_DIR), as `jobsuite keys
create` would, so every helper can send one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.config import Settings
from shared.state import ApiKeyStore, KeyLimits, open_api_keys

ADMIN_NAME = "test-admin"
# The test admin key must never be what stops a load test: the global limits still apply.
UNLIMITED = {
    "recipients_per_mail": 1_000_000,
    "mails_per_hour": 1_000_000,
    "submissions_per_second": 1_000_000.0,
    "burst": 1_000_000,
}
# One admin key per key store: rotating it again would lock out a client made before.
_admins: dict[tuple[Path, str], str] = {}


def key_store(state_dir: Path, state_url: str = "") -> ApiKeyStore:
    """The key store under `state_dir`, or in the database at `state_url` when given."""
    return open_api_keys(Settings(state_dir=Path(state_dir), state_url=state_url))


def make_key(
    state_dir: Path, name: str, *, admin: bool = False, state_url: str = "", **limits: Any
) -> str:
    """A new key named `name` (replacing any of that name) in the store under `state_dir`
    (or at `state_url`); `limits` are KeyLimits fields (the defaults otherwise)."""
    store = key_store(state_dir, state_url)
    try:
        _record, secret = store.create(name, admin=admin, limits=KeyLimits(**limits), rotate=True)
    finally:
        store.close()
    return secret


def admin_key(state_dir: Path, state_url: str = "") -> str:
    """The test admin key of the store under `state_dir` (or at `state_url`), made on first
    use."""
    where = Path(state_dir).resolve()
    store = key_store(where, state_url)
    try:
        known = _admins.get((where, state_url))
        if known is not None and store.authenticate(known) is not None:
            return known
    finally:
        store.close()
    made = make_key(where, ADMIN_NAME, admin=True, state_url=state_url, **UNLIMITED)
    _admins[(where, state_url)] = made
    return made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
