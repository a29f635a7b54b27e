"""AMQP_URL listing several broker nodes: split, short entries completed from the first,
each entry checked (a bad one named), passwords never shown; connecting goes through them
in order and, when none answers, says each node's cause in one line."""

from __future__ import annotations

import pytest

from shared.amqp import connect_once
from shared.amqp.connect_errors import all_nodes_failed
from shared.amqp.connection import connection_parameters
from shared.amqp_url import host_port, node_urls
from shared.config import Settings
from shared.errors import BrokerConnectFailed, ConfigError
from tests.support.ports import free_port


def test_a_single_url_is_one_node() -> None:
    assert node_urls("amqp://u:p@rabbit:5672/%2F") == ("amqp://u:p@rabbit:5672/%2F",)


def test_full_urls_are_kept_in_order() -> None:
    raw = "amqp://u:p@node1:5672/vh, amqps://v:q@node2:5671/other"
    assert node_urls(raw) == ("amqp://u:p@node1:5672/vh", "amqps://v:q@node2:5671/other")


def test_a_short_entry_takes_all_but_its_host_and_port_from_the_first() -> None:
    raw = "amqps://u:p@node1:5671/vh?heartbeat=5,node2,node3:5673,[::1]:5674"
    assert node_urls(raw) == (
        "amqps://u:p@node1:5671/vh?heartbeat=5",
        "amqps://u:p@node2:5671/vh?heartbeat=5",
        "amqps://u:p@node3:5673/vh?heartbeat=5",
        "amqps://u:p@[::1]:5674/vh?heartbeat=5",
    )


def test_a_short_entry_after_a_first_without_port_has_none_either() -> None:
    assert node_urls("amqp://u:p@node1/vh,node2")[1] == "amqp://u:p@node2/vh"


def test_a_comma_inside_ssl_options_does_not_split() -> None:
    raw = "amqps://u:p@n1/vh?ssl_options={'a':'1','b':'2'},n2"
    assert node_urls(raw)[1] == "amqps://u:p@n2/vh?ssl_options={'a':'1','b':'2'}"


def test_settings_give_every_nodes_full_url() -> None:
    s = Settings.from_env({"AMQP_URL": "amqp://u:p@node1:5672/vh,node2"})
    assert s.amqp_url == "amqp://u:p@node1:5672/vh,node2"
    assert s.amqp_urls == ("amqp://u:p@node1:5672/vh", "amqp://u:p@node2:5672/vh")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("amqp://u:p@n1/vh,n2:99999", "entry 2 (n2:99999) must look like amqp://"),
        ("amqp://u:p@n1/vh,n2:0", "the port must be 1-65535"),
        ("amqp://u:p@n1/vh,", "entry 2 (empty) must look like amqp://"),
        ("amqp://u:p@n1/vh,,n3", "entry 2 (empty)"),
        ("amqp://u:p@n1/vh,http://n2", "entry 2 (http://n2) must look like amqp://"),
        ("amqp://u:p@n1/vh,amqp:///vh", "it names no host"),
        ("n0,amqp://u:p@n1/vh", "entry 1 (n0) must look like amqp://"),
        ("amqp://u:p@n1/vh,n2/vh", "or be host[:port] after the first entry"),
    ],
)
def test_a_bad_entry_is_one_clear_error_naming_it(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AMQP_URL": value})
    assert str(e.value).startswith("AMQP_URL entry "), str(e.value)
    assert says in str(e.value)


@pytest.mark.parametrize(
    "value",
    [
        "amqp://alice:s3cret@n1/vh,amqp://bob:s3cret@n2:99999/vh",
        "amqp://alice:s3cret@n1/vh,bob:s3cret@n2",
        "amqp://alice:s3cret@n1:0/vh,n2",
    ],
)
def test_no_entrys_password_is_shown(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AMQP_URL": value})
    assert "s3cret" not in str(e.value)
    assert "***" in str(e.value)


def test_a_node_is_named_by_host_and_port_only() -> None:
    assert host_port("amqp://u:secret@node1:5673/vh") == "node1:5673"
    assert host_port("amqps://u:secret@node1/vh") == "node1:5671"
    assert host_port("amqp://u:secret@[::1]/vh") == "[::1]:5672"


def test_each_node_gets_the_same_connection_settings() -> None:
    s = Settings(amqp_url="amqps://u:p@node1:5671/vh,node2", amqp_heartbeat=7)
    params = connection_parameters(s, "jobs.resize:x")
    assert [(p.host, p.port, p.virtual_host) for p in params] == [
        ("node1", 5671, "vh"),
        ("node2", 5671, "vh"),
    ]
    assert all(p.ssl_options is not None for p in params)  # amqps:// stays TLS on each node
    assert {p.heartbeat for p in params} == {7}
    assert {p.client_properties["connection_name"] for p in params} == {"jobs.resize:x"}


def test_a_node_pika_refuses_is_a_configuration_error_naming_it() -> None:
    s = Settings(amqp_url="amqp://u:p@node1/vh?no_such_option=1,node2")
    with pytest.raises(ConfigError, match=r"entry 1, node1:5672"):
        connection_parameters(s, "x")


def test_one_node_failing_keeps_its_own_line() -> None:
    failure = BrokerConnectFailed("RabbitMQ at n1:5672 refused …", cause="refused")
    assert all_nodes_failed([("n1:5672", failure)]) is failure


def test_every_node_failing_is_one_line_with_each_nodes_cause() -> None:
    closed, other = free_port(), free_port()
    s = Settings(amqp_url=f"amqp://guest:s3cret@127.0.0.1:{closed}/%2F,127.0.0.1:{other}")
    with pytest.raises(BrokerConnectFailed) as e:
        connect_once(s, "x")
    said = str(e.value)
    assert f"127.0.0.1:{closed} refused; 127.0.0.1:{other} refused" in said
    assert "\n" not in said and "s3cret" not in said and "AMQP_URL" in said
    assert e.value.cause == "refused"


def test_nodes_failing_differently_are_each_named() -> None:
    failures = [
        ("n1:5672", BrokerConnectFailed("…", cause="refused")),
        ("n2:5672", BrokerConnectFailed("…", cause="unreachable")),
        ("n3:5672", BrokerConnectFailed("…", cause="unknown_host")),
    ]
    failed = all_nodes_failed(failures)
    assert "n1:5672 refused; n2:5672 unreachable; n3:5672 host not found" in str(failed)
    assert failed.cause == "several"
