"""A failed connect, one line naming the cause and AMQP_URL: pika's errors as pika wraps them,
and real loopback listeners that are not RabbitMQ (one answers HTTP, one never speaks);
pika's own log lines dropped only while this thread connects."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
from collections.abc import Iterator

import pika
import pika.exceptions as pe
import pytest
from pika.adapters.utils.connection_workflow import (
    AMQPConnectorSocketConnectError,
    AMQPConnectorStackTimeout,
)

from shared.amqp import connect_once
from shared.amqp.connect_errors import connect_failure
from shared.amqp.pika_logs import quiet_while_connecting
from shared.config import Settings
from shared.errors import BrokerConnectFailed, ConfigError

PARAMS = pika.URLParameters("amqp://alice:secret@127.0.0.1:5673/%2F")


def refused() -> BaseException:
    # Exactly as pika's BlockingConnection raises it: the outer error's text is empty.
    inner = AMQPConnectorSocketConnectError(ConnectionRefusedError(111, "Connection refused"))
    return pe.AMQPConnectionError(inner)


def by_broker(kind: type[pe.AMQPConnectionError], code: int, text: str) -> BaseException:
    return kind(f"ConnectionClosedByBroker: ({code}) '{text}'")


@pytest.mark.parametrize(
    ("error", "cause", "says"),
    [
        (refused(), "refused", "is RabbitMQ running on 127.0.0.1:5673? check AMQP_URL"),
        (
            socket.gaierror(-2, "Name or service not known"),
            "unknown_host",
            "host '127.0.0.1' not found (Name or service not known): check the host in AMQP_URL",
        ),
        (
            OSError(errno.EHOSTUNREACH, "No route to host"),
            "unreachable",
            "is unreachable (No route to host): check the host in AMQP_URL",
        ),
        (
            pe.AMQPConnectionError(AMQPConnectorSocketConnectError(TimeoutError("timed out"))),
            "timeout",
            "no answer from 127.0.0.1:5673 within",
        ),
        (
            AMQPConnectorStackTimeout("Timeout during AMQP handshake"),
            "not_amqp",
            "never spoke AMQP: is it RabbitMQ's AMQP port",
        ),
        (
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
            "tls",
            "amqps:// needs RabbitMQ's TLS port",
        ),
        (
            by_broker(pe.ProbableAuthenticationError, 403, "ACCESS_REFUSED - Login was refused"),
            "bad_credentials",
            "refused the login of user 'alice' (ACCESS_REFUSED): check the user and password in"
            " AMQP_URL",
        ),
        (
            by_broker(pe.ProbableAccessDeniedError, 530, "NOT_ALLOWED - vhost x not found"),
            "vhost",
            "refused virtual host '/' (NOT_ALLOWED - vhost x not found): check the vhost in"
            " AMQP_URL",
        ),
        (
            pe.ConnectionClosedByBroker(320, "CONNECTION_FORCED - shutdown"),
            "other",
            "CONNECTION_FORCED - shutdown: check AMQP_URL",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else "",
)
def test_each_cause_is_one_line_naming_what_to_check(
    error: BaseException, cause: str, says: str
) -> None:
    failure = connect_failure(error, PARAMS)
    assert isinstance(failure, BrokerConnectFailed)
    assert failure.cause == cause
    assert says in str(failure), str(failure)
    assert "\n" not in str(failure) and "secret" not in str(failure)


def test_guest_from_afar_is_told_that_guest_logs_in_only_from_localhost() -> None:
    params = pika.URLParameters("amqp://guest:guest@rabbit.example:5672/%2F")
    error = by_broker(pe.ProbableAuthenticationError, 403, "ACCESS_REFUSED - Login was refused")
    assert "guest log in only from localhost" in str(connect_failure(error, params))


@pytest.fixture
def http_listener() -> Iterator[int]:
    """A loopback port that answers like an HTTP server (the management port, say)."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            try:
                peer, _ = server.accept()
            except OSError:
                return
            with peer:
                peer.recv(64)
                peer.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that takes connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def test_a_port_that_answers_http_is_not_amqp(http_listener: int) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{http_listener}/%2F"
    with pytest.raises(BrokerConnectFailed, match="does not speak AMQP") as failed:
        connect_once(Settings(amqp_url=url), "test")
    assert failed.value.cause == "not_amqp"


def test_a_port_that_never_speaks_is_not_amqp(silent_listener: int) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{silent_listener}/%2F?stack_timeout=0.5"
    with pytest.raises(BrokerConnectFailed, match="never spoke AMQP") as failed:
        connect_once(Settings(amqp_url=url), "test")
    assert failed.value.cause == "not_amqp"


def test_a_url_pika_refuses_is_a_configuration_error() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/%2F?hearbeat=10"  # sic
    with pytest.raises(ConfigError, match=r"AMQP_URL must look like .*'hearbeat'"):
        connect_once(Settings(amqp_url=url), "test")


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def pika_records() -> Iterator[list[logging.LogRecord]]:
    kept = Kept()
    pika_log = logging.getLogger("pika.adapters.blocking_connection")
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    pika_log.addHandler(kept)
    yield kept.records
    pika_log.removeHandler(kept)
    root.setLevel(before)


def test_pika_is_quiet_only_while_this_thread_connects(
    pika_records: list[logging.LogRecord],
) -> None:
    pika_log = logging.getLogger("pika.adapters.blocking_connection")
    with quiet_while_connecting():
        pika_log.error("while connecting")
        other = threading.Thread(target=pika_log.error, args=("another thread",))
        other.start()
        other.join()
    pika_log.error("after")
    assert [r.getMessage() for r in pika_records] == ["another thread", "after"]


def test_under_debug_pika_keeps_every_line(pika_records: list[logging.LogRecord]) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    with quiet_while_connecting():
        logging.getLogger("pika.adapters.blocking_connection").error("while connecting")
    assert [r.getMessage() for r in pika_records] == ["while connecting"]
