"""Throwaway broker users for a test: made with rabbitmqctl, removed in a `finally`.

The tests share the vhost "/" (one namespace per test), so a user's permissions are the
production ones (`shared.broker_permissions`) for the test's namespace only.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from urllib.parse import quote

from shared.broker_permissions import NOTHING, Permissions, permissions
from shared.config import Settings
from tests.support.broker import rabbitmqctl


def role_rights(settings: Settings, *roles: str) -> dict[str, Permissions]:
    return {role: permissions(role, settings.namespace) for role in roles}


def may_publish_events(namespace: str) -> Permissions:
    """An outsider (`mallory`) who may write to the events exchange and nothing else."""
    prefix = f"{namespace}[.]" if namespace else ""
    return Permissions(NOTHING, f"^{prefix}events$", NOTHING)


@contextmanager
def broker_users(
    settings: Settings, rights: Mapping[str, Permissions]
) -> Iterator[dict[str, Settings]]:
    """For each name, `settings` whose AMQP_URL logs in as a new user `<namespace>-<name>`
    with those permissions; every user is deleted afterwards. One rabbitmqctl call takes a
    second or more (an Erlang VM each), so the users are made side by side."""
    users = {name: f"{settings.namespace}-{name}" for name in rights}
    # Hex: a password starting with "-" would be taken for an option by rabbitmqctl.
    passwords = {name: secrets.token_hex(12) for name in rights}

    def add(name: str) -> None:
        rabbitmqctl("add_user", users[name], passwords[name])
        granted = rights[name]
        rabbitmqctl(
            "set_permissions",
            "-p",
            "/",
            users[name],
            granted.configure,
            granted.write,
            granted.read,
        )

    def delete(name: str) -> None:
        rabbitmqctl("delete_user", users[name])

    with ThreadPoolExecutor(max(1, len(rights))) as pool:
        try:
            list(pool.map(add, rights))
            yield {
                name: replace(settings, amqp_url=_url(users[name], passwords[name]))
                for name in rights
            }
        finally:
            # Whatever was made (a failed add_user leaves nothing to delete: ignore that).
            for future in [pool.submit(delete, name) for name in rights]:
                with suppress(subprocess.CalledProcessError):
                    future.result()


def _url(user: str, password: str) -> str:
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:5672/%2F"
