"""Two compose projects, each brought up once: `stack` (docker-compose.yml with four resizers
and the `monitoring` profile) for the whole session, `cluster` (deploy/compose.cluster.yml)
for test_cluster.py alone, which runs first, so the two never run side by side on CI's two
cores. Each goes down (volumes too) afterwards, with its services' logs printed when a test
failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.compose import CLUSTER, ComposeStack

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
    healthy = ["rabbitmq", "gateway", "audit", "mailsink", "prometheus"]
    yield from _running(request, compose, healthy, resizers=4)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    compose = ComposeStack(file=CLUSTER)
    healthy = ["rabbitmq1", "rabbitmq2", "rabbitmq3", "postgres", "s3", "gateway", "audit"]
    yield from _running(request, compose, healthy, resizers=2, within=300)


def _running(
    request: pytest.FixtureRequest,
    compose: ComposeStack,
    healthy: list[str],
    *,
    resizers: int,
    within: float = 180,
) -> Iterator[ComposeStack]:
    """Up, healthy, an admin key, every worker consuming; down afterwards, with the logs of
    every service printed when a test (or the start itself) failed meanwhile."""
    failed_before = len(_failed)
    try:
        compose.up("--scale", f"resizer={resizers}")
        compose.wait_healthy(healthy, timeout=within)
        compose.use_admin_key()
        for service, count in (("resizer", resizers), ("renderer", 1), ("mailer", 1)):
            compose.wait_consuming(service, count)
        yield compose
    except BaseException:
        _failed.append(f"compose up ({compose.file.name})")
        raise
    finally:
        if len(_failed) > failed_before:
            _print_logs(request, compose)
        compose.down()


def _print_logs(request: pytest.FixtureRequest, compose: ComposeStack) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for service in compose.services():
        text = f"\n===== logs of {service} ({compose.project}) =====\n{compose.logs(service)}"
        if reporter is not None:
            reporter.write(text)
        else:
            print(text)
