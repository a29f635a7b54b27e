"""Why a connection attempt failed, said in one line that names the cause and what to check.

pika reports a failed connect through a chain of wrappers (a refused port arrives as an
`AMQPConnectionError` whose text is empty, around a connector error, around the socket's
`ConnectionRefusedError`); a login or a virtual host the broker refuses arrives as a
"probable" error holding the broker's reply. `connect_failure` unwraps that chain and names
what a person can act on: the broker not running, the host, the port, the login, the vhost.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl

import pika
import pika.exceptions as pe
from pika.adapters.utils.connection_workflow import (
    AMQPConnectorException,
    AMQPConnectorPhaseErrorBase,
    AMQPConnectorStackTimeout,
)

from shared.errors import BrokerConnectFailed

# The setting every message points at.
SETTING = "AMQP_URL"
URL_FORM = "amqp://user:pass@host:port/vhost"
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
# The broker's reply inside pika's "probable" errors: "(403) 'ACCESS_REFUSED - Login …'".
_REPLY = re.compile(r"\((\d{3})\) ['\"](.*?)['\"]\)?$")


def connect_failure(error: BaseException, params: pika.ConnectionParameters) -> BrokerConnectFailed:
    """The one-line BrokerConnectFailed for a failed connection attempt with `params`."""
    root = _root_cause(error)
    where = host_port(params)
    user = getattr(params.credentials, "username", None) or "?"
    cause, says = _explain(root, params, where, user)
    return BrokerConnectFailed(says, cause=cause)


def _explain(
    root: BaseException, params: pika.ConnectionParameters, where: str, user: str
) -> tuple[str, str]:
    if isinstance(root, ConnectionRefusedError):
        return "refused", (
            f"RabbitMQ at {where} refused the connection: is RabbitMQ running on {where}?"
            f" check {SETTING}"
        )
    if isinstance(root, socket.gaierror):
        return "unknown_host", (
            f"RabbitMQ host {params.host!r} not found ({root.strerror or root}):"
            f" check the host in {SETTING}"
        )
    if isinstance(root, OSError) and root.errno in _UNREACHABLE:
        return "unreachable", (
            f"RabbitMQ host {params.host} is unreachable ({root.strerror}):"
            f" check the host in {SETTING} and the network"
        )
    if isinstance(root, socket.timeout | TimeoutError):
        return "timeout", (
            f"no answer from {where} within {params.socket_timeout:g} s: is RabbitMQ running"
            f" there, and no firewall in between? check {SETTING}"
        )
    if isinstance(root, AMQPConnectorStackTimeout):
        return "not_amqp", (
            f"{where} took the connection but never spoke AMQP: is it RabbitMQ's AMQP port"
            f" (usually 5672)? check the port in {SETTING}"
        )
    if isinstance(root, pe.IncompatibleProtocolError):
        return "not_amqp", (
            f"{where} does not speak AMQP 0-9-1: is it RabbitMQ's AMQP port (usually 5672,"
            f" not the management port 15672)? check the port in {SETTING}"
        )
    if isinstance(root, ssl.SSLError):
        why = getattr(root, "reason", None) or root
        return "tls", (
            f"TLS with {where} failed ({why}): amqps:// needs RabbitMQ's TLS"
            f" port (usually 5671), amqp:// its plain one (5672); check {SETTING}"
        )
    if isinstance(root, pe.ProbableAuthenticationError | pe.AuthenticationError):
        guest = (
            " (RabbitMQ lets guest log in only from localhost)"
            if user == "guest" and not _is_loopback(params.host)
            else ""
        )
        return "bad_credentials", (
            f"RabbitMQ at {where} refused the login of user {user!r} (ACCESS_REFUSED){guest}:"
            f" check the user and password in {SETTING}"
        )
    if isinstance(root, pe.ProbableAccessDeniedError):
        reply = _broker_reply(root)
        return "vhost", (
            f"RabbitMQ at {where} refused virtual host {params.virtual_host!r}"
            f"{f' ({reply})' if reply else ''}: check the vhost in {SETTING}"
            f" (it must exist and allow user {user!r}; %2F is the default vhost /)"
        )
    if isinstance(root, OSError):
        return "network", (
            f"cannot reach RabbitMQ at {where}: {root.strerror or root}: check {SETTING}"
        )
    reply = _broker_reply(root) or str(root) or type(root).__name__
    return "other", f"cannot connect to RabbitMQ at {where}: {reply}: check {SETTING}"


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error of pika's wrappers: the socket's, or the broker's reply."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, AMQPConnectorPhaseErrorBase):
            error = error.exception
        elif (
            isinstance(error, pe.AMQPConnectionError | AMQPConnectorException)
            and error.args
            and isinstance(error.args[0], BaseException)
        ):
            error = error.args[0]
        else:
            break
    return error


def _broker_reply(error: BaseException) -> str:
    """The broker's own words ("NOT_ALLOWED - vhost x not found") from pika's error."""
    if isinstance(error, pe.ConnectionClosed):
        return str(error.reply_text)
    text = str(error.args[-1]) if error.args else ""
    match = _REPLY.search(text)
    return match.group(2) if match else ""


# Each cause in a few words, for the line that lists every node's.
_BRIEF = {
    "unknown_host": "host not found",
    "not_amqp": "not AMQP",
    "tls": "TLS failed",
    "bad_credentials": "login refused",
    "vhost": "vhost refused",
    "network": "network error",
    "other": "failed",
}


def all_nodes_failed(failures: list[tuple[str, BrokerConnectFailed]]) -> BrokerConnectFailed:
    """The one line for a connect that no node took: a single node's own line; with several,
    each node's cause in brief (`node1:5672 refused; node2:5672 unreachable`), and as the
    cause the one they share, or `several`."""
    if len(failures) == 1:
        return failures[0][1]
    causes = {f.cause for _, f in failures}
    each = "; ".join(f"{node} {_BRIEF.get(f.cause, f.cause)}" for node, f in failures)
    return BrokerConnectFailed(
        f"no RabbitMQ node answered ({each}): is RabbitMQ running on one of them? check {SETTING}",
        cause=causes.pop() if len(causes) == 1 else "several",
    )


def host_port(params: pika.ConnectionParameters) -> str:
    host = str(params.host)
    return f"[{host}]:{params.port}" if ":" in host else f"{host}:{params.port}"


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
