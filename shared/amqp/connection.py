"""Connecting to RabbitMQ: one blocking connection per thread, with retry and back-off.

pika's BlockingConnection is not thread-safe: a connection belongs to the thread that made
it. Other threads reach it only through `Connection.call_threadsafe`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import pika
import pika.exceptions as pe
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from shared.amqp.backoff import compute_backoff
from shared.amqp.blocked import BlockedWatch
from shared.amqp.channel import Channel, ConfirmObserver
from shared.amqp.connect_errors import (
    SETTING,
    URL_FORM,
    all_nodes_failed,
    connect_failure,
    host_port,
)
from shared.amqp.errors import broker_errors
from shared.amqp.pika_logs import quiet_while_connecting
from shared.amqp.pika_private import patch_process, send_eagerly
from shared.amqp.silence import SilenceWatch
from shared.amqp_url import host_port as node_of
from shared.amqp_url import node_urls
from shared.config import Settings, config_error
from shared.errors import BrokerConnectFailed, BrokerError, ConfigError
from shared.log import get_logger

log = get_logger("shared.amqp")

# How long a publish may wait while the broker blocks publishers (memory/disk alarm), for
# connections that neither wait the alarm out nor drop at once (see WhenBlocked).
BLOCKED_CONNECTION_TIMEOUT_S = 10.0
WhenBlocked = Literal["time out", "wait", "drop"]
"""What a connection does when the broker blocks its publishes during an alarm: give up
after BLOCKED_CONNECTION_TIMEOUT_S (tools); wait as long as the alarm lasts (workers: a job
in hand must not lose a delivery attempt to an alarm); end at once (the gateway, which
answers people)."""


class Connection:
    """One blocking connection, owned by the thread that opened it."""

    def __init__(
        self,
        raw: pika.BlockingConnection,
        *,
        app_id: str,
        blocked: BlockedWatch | None = None,
        user: str | None = None,
        node: str = "",
    ) -> None:
        self._raw = raw
        self.node = node  # the broker node it reached, host:port (for logs: no password)
        self._app_id = app_id
        self._blocked = blocked
        self.user = user  # the broker user it authenticated as: every message's user_id

    @property
    def is_open(self) -> bool:
        return bool(self._raw.is_open)

    @property
    def blocked_reason(self) -> str | None:
        """Why the broker blocks this connection's publishes (e.g. "low on memory"), or None;
        it stays set on a connection dropped for it (`when_blocked="drop"`)."""
        return self._blocked.reason if self._blocked is not None else None

    def channel(self, *, confirm: bool = False, confirms: ConfirmObserver | None = None) -> Channel:
        """A new channel; with `confirm`, one that can publish (every message confirmed),
        each confirm's latency told to `confirms` when given."""
        with broker_errors("open channel"):
            raw = self._raw.channel()
        return Channel(
            raw, app_id=self._app_id, confirm=confirm, user_id=self.user, confirms=confirms
        )

    def pump(self, seconds: float) -> None:
        """Run the I/O loop for a while: deliveries, heartbeats, thread-safe callbacks."""
        with broker_errors("I/O"):
            self._raw.process_data_events(time_limit=seconds)

    def call_threadsafe(self, fn: Callable[[], None]) -> None:
        """Schedule `fn` on the connection's own thread (the only safe way in)."""
        with broker_errors("schedule callback"):
            self._raw.add_callback_threadsafe(fn)

    def close(self) -> None:
        try:
            if self._raw.is_open:
                self._raw.close()
        except (pe.AMQPError, OSError, AssertionError) as e:
            log.debug("close_failed", error=str(e))


def connection_parameters(
    settings: Settings, name: str, when_blocked: WhenBlocked = "time out"
) -> list[pika.URLParameters]:
    """One set of parameters per broker node, in the order AMQP_URL lists them."""
    urls = settings.amqp_urls
    params = []
    for number, url in enumerate(urls, start=1):
        try:
            params.append(_node_parameters(url, settings, name, when_blocked))
        except ConfigError as e:
            if len(urls) == 1:
                raise
            raise ConfigError(f"{e} (entry {number}, {node_of(url)})") from None
    return params


def _node_parameters(
    url: str, settings: Settings, name: str, when_blocked: WhenBlocked
) -> pika.URLParameters:
    params = _url_parameters(url)
    params.heartbeat = settings.amqp_heartbeat
    if when_blocked == "time out":
        params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_S
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name, "product": "jobsuite"}
    return params


def connect_once(
    settings: Settings,
    name: str,
    *,
    when_blocked: WhenBlocked = "time out",
    eager_send: bool = False,
) -> Connection:
    """One connection attempt to each node in turn, until one answers; `when_blocked` says
    what a broker alarm does to it, `eager_send` whether it sends each write at once
    (pika_private.send_eagerly: for a connection that writes a message at a time, not one
    that gathers a batch to send together). BrokerConnectFailed says in one line why each
    node failed and what to check."""
    patch_process()  # pika's process-wide patches, before any connection of the process
    failures: list[tuple[str, BrokerConnectFailed]] = []
    for params in connection_parameters(settings, name, when_blocked):
        try:
            with quiet_while_connecting():
                raw = pika.BlockingConnection(params)
        except (pe.AMQPError, AMQPConnectorException, OSError, AssertionError) as e:
            failures.append((host_port(params), connect_failure(e, params)))
            continue
        # While blocked the broker still sends heartbeats, so a connection waiting out an
        # alarm is not mistaken for a dead one.
        SilenceWatch.start(raw)
        if eager_send:
            send_eagerly(raw)
        blocked = BlockedWatch.start(raw, drop=when_blocked == "drop")
        return Connection(
            raw, app_id=name, blocked=blocked, user=user_of(params), node=host_port(params)
        )
    raise all_nodes_failed(failures)


def connect(
    settings: Settings,
    name: str,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    when_blocked: WhenBlocked = "time out",
    eager_send: bool = False,
) -> Connection | None:
    """Connect, retrying with back-off and jitter until it works or `should_stop()`;
    returns None only when asked to stop. An AMQP_URL pika refuses (an unknown query
    option: Settings checked the rest) ends the process as a bad setting does at start."""
    attempt = 0
    while not should_stop():
        try:
            connection = connect_once(
                settings, name, when_blocked=when_blocked, eager_send=eager_send
            )
        except ConfigError as e:
            raise SystemExit(config_error(e)) from None
        except BrokerError as e:
            # One line per attempt, so one per back-off step; no traceback: the line says it.
            delay = compute_backoff(attempt)
            attempt += 1
            log.warning(
                "broker_connect_failed",
                cause=getattr(e, "cause", "other"),
                error=str(e),
                attempt=attempt,
                retry_in_s=round(delay, 2),
            )
            sleep_unless(should_stop, delay, sleep)
        else:
            # Which node, when there is a choice of them; one node needs no line of its own.
            several = len(settings.amqp_urls) > 1
            (log.info if several else log.debug)(
                "broker_connected", connection=name, node=connection.node
            )
            return connection
    return None


def sleep_unless(
    should_stop: Callable[[], bool], seconds: float, sleep: Callable[[float], object]
) -> None:
    """Sleep `seconds` in steps of at most 0.2 s, asking `should_stop()` before each."""
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        sleep(min(left, 0.2))


def broker_user(amqp_url: str) -> str | None:
    """The broker user AMQP_URL logs in as (pika's default, guest, without one): its first
    node's, the user every node is expected to take."""
    return user_of(_url_parameters(node_urls(amqp_url)[0]))


def _url_parameters(amqp_url: str) -> pika.URLParameters:
    # Settings.from_env checks AMQP_URL's shape; pika still refuses what that cannot see
    # (an unknown query option), and says so here as a configuration error, not a traceback.
    try:
        return pika.URLParameters(amqp_url)
    except (ValueError, TypeError, IndexError) as e:
        raise ConfigError(f"{SETTING} must look like {URL_FORM}: {e}") from None


def user_of(params: pika.ConnectionParameters) -> str | None:
    # PLAIN credentials name the user; EXTERNAL (certificates) does not, and the broker
    # takes the user from the certificate, which we cannot know here: no user_id then.
    username = getattr(params.credentials, "username", None)
    return username if isinstance(username, str) and username else None
