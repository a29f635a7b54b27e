"""The gateway's /docs and /redoc in a real Chromium with no internet: the pages draw the
API's operations from files the gateway serves itself (they were blank offline when Swagger
UI and Redoc came from CDNs)."""

from __future__ import annotations

from playwright.sync_api import expect

from shared.config import Settings
from tests.browser.conftest import OfflinePage
from tests.conftest import SpawnFn
from tests.support.gateway import start_gateway

OPERATIONS = ("/jobs/resize", "/jobs/render", "/jobs/mail", "/jobs/{job_id}")


def test_swagger_ui_shows_every_operation_and_opens_one(
    spawn: SpawnFn, settings: Settings, offline: OfflinePage
) -> None:
    gateway = start_gateway(spawn, settings)
    page = offline.page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{gateway.url}/docs")
    for path in OPERATIONS:
        expect(page.locator(f".opblock-summary-path[data-path='{path}']").first).to_be_visible()
    resize = page.locator(".opblock-post .opblock-summary-path[data-path='/jobs/resize']")
    resize.click()
    expect(
        page.locator(".opblock.is-open .parameters-container, .opblock.is-open .opblock-body").first
    ).to_be_visible()
    assert offline.foreign == []
    assert errors == []


def test_redoc_shows_the_operations(
    spawn: SpawnFn, settings: Settings, offline: OfflinePage
) -> None:
    gateway = start_gateway(spawn, settings)
    page = offline.page
    page.goto(f"{gateway.url}/redoc")
    expect(page.get_by_text("jobsuite gateway", exact=False).first).to_be_visible()
    expect(page.get_by_text("/jobs/resize", exact=False).first).to_be_attached()
    assert offline.foreign == []
