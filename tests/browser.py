"""Headless Chromium for the portal and dashboard tests: Debian's `chromium`, driven by Playwright.

Playwright drives the system browser; it never downloads one (`playwright install` fails
offline). Without Chromium the browser tests skip locally, but under CI=true they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # loopback only: a developer's proxy settings must not reroute the page
]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (install it: apt-get install -y chromium)"
    return None


MISSING = _missing_browser()
# Never skipped under CI: there the browser fixture fails loudly instead.
needs_browser = pytest.mark.skipif(MISSING is not None and not IN_CI, reason=f"browser tests need Chromium: {MISSING}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if MISSING is not None:
        pytest.fail(f"browser tests cannot run: {MISSING}")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Pages:
    """Pages of one site, each in a fresh browser context; ``close`` fails the test on any
    page error or unexpected dialog seen meanwhile."""

    def __init__(self, browser: Browser, base_url: str, path: str) -> None:
        self._browser, self._base_url, self._path = browser, base_url, path
        self._contexts: list[BrowserContext] = []
        self._errors: list[str] = []

    def open(self, locale: str = "en-US", width: int = 1280, height: int = 900, clock: bool = False) -> Page:
        context = self._browser.new_context(base_url=self._base_url, locale=locale,
                                            viewport={"width": width, "height": height})  # fmt: skip
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self._errors.append(str(exc)))
        page.on("dialog", lambda dialog: self._errors.append(f"unexpected dialog: {dialog.message}"))
        if clock:
            page.clock.install()
        page.goto(self._path)
        expect(page.locator("body.ready")).to_have_count(1)
        return page

    def close(self) -> None:
        for context in self._contexts:
            context.close()
        assert self._errors == [], "the page raised errors"
