"""API keys for tests: made straight in a test's key store (STATE_DIR), as `jobsuite keys
create` would, so every helper can send one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.state import API_KEYS_FILE
from shared.state.keys import KeyLimits, SqliteApiKeyStore

ADMIN_NAME = "test-admin"
# The test admin key must never be what stops a load test: the global limits still apply.
UNLIMITED = {
    "recipients_per_mail": 1_000_000,
    "mails_per_hour": 1_000_000,
    "submissions_per_second": 1_000_000.0,
    "burst": 1_000_000,
}
# One admin key per key store: rotating it again would lock out a client made before.
_admins: dict[Path, str] = {}


def make_key(state_dir: Path, name: str, *, admin: bool = False, **limits: Any) -> str:
    """A new key named `name` (replacing any of that name) in the store under `state_dir`;
    `limits` are KeyLimits fields (the defaults otherwise)."""
    store = SqliteApiKeyStore.open(Path(state_dir) / API_KEYS_FILE)
    try:
        _record, secret = store.create(name, admin=admin, limits=KeyLimits(**limits), rotate=True)
    finally:
        store.close()
    return secret


def admin_key(state_dir: Path) -> str:
    """The test admin key of the store under `state_dir`, made on first use."""
    where = Path(state_dir).resolve()
    store = SqliteApiKeyStore.open(where / API_KEYS_FILE)
    try:
        known = _admins.get(where)
        if known is not None and store.authenticate(known) is not None:
            return known
    finally:
        store.close()
    _admins[where] = make_key(where, ADMIN_NAME, admin=True, **UNLIMITED)
    return _admins[where]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
