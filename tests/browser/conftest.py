"""A real headless Chromium (Debian's, at CHROMIUM or /usr/bin/chromium) driven by
Playwright, cut off from everything but loopback: a page that asks another host for anything
fails its test. A missing Chromium fails the run loudly; it never skips
(deploy/ensure-chromium.sh installs it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run deploy/ensure-chromium.sh (or set CHROMIUM)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


class OfflinePage:
    """A page whose requests to any host but loopback are refused and remembered."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.foreign: list[str] = []
        page.route("**/*", self._only_loopback)

    def _only_loopback(self, route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme in ("data", "blob") or host in LOOPBACK:
            route.continue_()
            return
        self.foreign.append(url)
        route.abort("internetdisconnected")


@pytest.fixture
def offline(chromium: Browser) -> Iterator[OfflinePage]:
    context = chromium.new_context()
    try:
        yield OfflinePage(context.new_page())
    finally:
        context.close()
