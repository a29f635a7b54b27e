"""One compose project for the whole session (every test file shares it: one stack to build
and start): up with four resizers and the `monitoring` profile (Prometheus), down (volumes
too) afterwards, with the logs of every service printed when a test failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.compose import ComposeStack

SERVICES = (
    "rabbitmq",
    "gateway",
    "audit",
    "mailsink",
    "resizer",
    "renderer",
    "mailer",
    "prometheus",
)
_failed: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        _failed.append(item.nodeid)
    return report


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    compose = ComposeStack(profiles=("monitoring",))
    try:
        compose.up("--scale", "resizer=4")
        compose.wait_healthy(["rabbitmq", "gateway", "audit", "mailsink", "prometheus"])
        compose.use_admin_key()
        for service, count in (("resizer", 4), ("renderer", 1), ("mailer", 1)):
            compose.wait_consuming(service, count)
        yield compose
    except BaseException:
        _failed.append("compose up")
        raise
    finally:
        if _failed:
            _print_logs(request, compose)
        compose.down()


def _print_logs(request: pytest.FixtureRequest, compose: ComposeStack) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for service in SERVICES:
        text = f"\n===== logs of {service} ({compose.project}) =====\n{compose.logs(service)}"
        if reporter is not None:
            reporter.write(text)
        else:
            print(text)
