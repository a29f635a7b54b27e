"""`jobsuite broker-users`: each service its own least-privilege broker user, then the topology.

Run as a broker administrator (AMQP_URL's user), e.g. by compose's one-shot `rabbitmq-users`
service before the others start. Users and passwords come from BROKER_USERS; permissions from
`shared.broker_permissions` (docs/operations.md#broker-users). It goes through the management
HTTP API (MANAGEMENT_URL, with the AMQP credentials), so no password hash is ever written
down, and it is idempotent: every run sets each listed user's password and permissions again.
The services cannot declare the topology with those permissions, so it declares it too.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.table import Table

from cli.broker_cmds import amqp_vhost, management_login, management_url
from cli.common import console, fail, readable_errors, settings
from shared.amqp import connect_once
from shared.broker_permissions import ROLES, permissions
from shared.config import Settings
from shared.events import instance_name
from shared.topology import declare_topology


def register(app: Any) -> None:
    app.command("broker-users")(broker_users)


@readable_errors
def broker_users(
    await_nodes: Annotated[
        int,
        typer.Option(
            min=1,
            help="wait until this many broker nodes run (a cluster) before declaring queues",
        ),
    ] = 1,
) -> None:
    """Create or update each service's broker user (BROKER_USERS) and declare the topology."""
    s = settings()
    if not s.broker_users:
        raise fail("BROKER_USERS is not set: nothing to do (see docs/operations.md)", 2)
    unknown = [role for role, _password in s.broker_users if role not in ROLES]
    if unknown:
        raise fail(
            f"BROKER_USERS names an unknown role {unknown[0]!r} (known: {', '.join(ROLES)})", 2
        )
    _wait_for_management(s)
    if await_nodes > 1:
        # A quorum queue gets its members when declared: on the nodes running at that moment.
        _wait_for_nodes(s, await_nodes)
    table = Table("user", "configure", "write", "read")
    for role, password in s.broker_users:
        granted = permissions(role, s.namespace)
        _put(s, f"users/{quote(role, safe='')}", {"password": password, "tags": ""})
        _put(
            s,
            f"permissions/{quote(amqp_vhost(s), safe='')}/{quote(role, safe='')}",
            {"configure": granted.configure, "write": granted.write, "read": granted.read},
        )
        table.add_row(role, granted.configure, granted.write, granted.read)
    connection = connect_once(s, f"jobsuite-broker-users:{instance_name()}")
    try:
        declare_topology(connection.channel(), s)
    finally:
        connection.close()
    console.print(table)
    console.print("topology declared")


# The management plugin starts a little after the broker answers its health check.
MANAGEMENT_WAIT_S = 60.0


def _wait_for_management(s: Settings, timeout: float = MANAGEMENT_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{management_url(s)}/api/overview", timeout=5)
            return
        except httpx.HTTPError as e:
            if time.monotonic() > deadline:
                raise fail(
                    f"the RabbitMQ management API is not reachable at {management_url(s)}"
                    f" ({type(e).__name__}); set MANAGEMENT_URL"
                ) from None
            time.sleep(1)


# Nodes of a cluster come up one by one; the last may take a minute to join.
NODES_WAIT_S = 180.0


def _wait_for_nodes(s: Settings, wanted: int) -> None:
    timeout = NODES_WAIT_S
    deadline = time.monotonic() + timeout
    running: list[str] = []
    while True:
        try:
            response = httpx.get(
                f"{management_url(s)}/api/nodes", auth=management_login(s), timeout=5
            )
            if response.status_code == 200:
                running = [n["name"] for n in response.json() if n.get("running")]
        except (httpx.HTTPError, ValueError, TypeError, KeyError):
            pass  # asked again below, until the deadline
        if len(running) >= wanted:
            console.print(f"{len(running)} broker nodes running: {', '.join(sorted(running))}")
            return
        if time.monotonic() > deadline:
            raise fail(
                f"only {len(running)} of {wanted} broker nodes are running after {timeout:.0f} s"
                f" ({', '.join(sorted(running)) or 'none'}); are they clustered (one Erlang"
                " cookie, each node listed in the others' peer discovery)?"
            )
        time.sleep(1)


def _put(s: Settings, path: str, body: dict[str, str]) -> None:
    url = f"{management_url(s)}/api/{path}"
    try:
        response = httpx.put(url, json=body, auth=management_login(s), timeout=10)
    except httpx.HTTPError as e:
        raise fail(
            f"the RabbitMQ management API is not reachable at {management_url(s)}"
            f" ({type(e).__name__}); set MANAGEMENT_URL"
        ) from None
    if response.status_code not in (200, 201, 204):
        # The answer names the problem (not an administrator, a bad regex); never the body.
        raise fail(
            f"the management API refused PUT /api/{path.split('/')[0]}/…:"
            f" {response.status_code} {response.text[:200]}"
        )
