"""Operating sources: GET /admin/sources and "Sync now" (admin scope), and the dashboard's card in
a real headless Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from core.auth import digest
from tests.browser import Pages, browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.web_site import FakeSite

ADMIN, STAFF = "ah_sources-admin-key-0000000000000", "ah_sources-staff-key-0000000000000"


@pytest.fixture(scope="module")
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        fake.page("/help/returns", "Returns and refunds", "<p>Return unworn shoes within 30 days for a refund.</p>")
        yield fake


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, site: FakeSite) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("sources-admin")
    kb = tmp / "kb"
    kb.mkdir()
    (kb / "hours.md").write_text("# Opening hours\n\nOpen 9:00-18:00.\n", encoding="utf-8")
    config = write_yaml(tmp / "hub.yaml", {
        "clients": [{"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
                    {"name": "staff", "tenant": "hr", "key_sha256": [digest(STAFF)]}],
        "sources": [{"name": "help", "type": "web", "url": f"{site.url}/sitemap.xml"}],
    })  # fmt: skip
    settings = make_settings(tmp, KB_DIR=str(kb), HUB_CONFIG=str(config))
    with HubServer(settings) as server:
        yield server


def _rows(hub: HubServer) -> list[dict[str, object]]:
    response = httpx.get(f"{hub.url}/admin/sources", headers={"X-API-Key": ADMIN})
    assert response.status_code == 200, response.text
    return response.json()["sources"]


def test_sources_for_admins_and_sync_now(hub: HubServer) -> None:
    assert httpx.get(f"{hub.url}/admin/sources").status_code == 401
    assert httpx.get(f"{hub.url}/admin/sources", headers={"X-API-Key": STAFF}).status_code == 403
    [row] = _rows(hub)
    assert (row["name"], row["type"], row["collection"], row["every_sec"]) == ("help", "web", "default", None)
    missing = httpx.post(f"{hub.url}/admin/sources/nope/sync", headers={"X-API-Key": ADMIN})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert httpx.post(f"{hub.url}/admin/sources/help/sync", headers={"X-API-Key": STAFF}).status_code == 403
    started = httpx.post(f"{hub.url}/admin/sources/help/sync", headers={"X-API-Key": ADMIN})
    assert started.status_code == 202 and started.json()["source"] == "help"
    for _ in range(500):
        [row] = _rows(hub)
        if row["outcome"] == "ok" and not row["syncing"]:
            break
        hub.run(asyncio.sleep(0.02))
    assert row["outcome"] == "ok" and row["documents"] == 1 and row["last_sync"]


@needs_browser
def test_the_dashboard_card_lists_sources_and_syncs_one(browser: Browser, hub: HubServer, site: FakeSite) -> None:  # noqa: F811
    pages = Pages(browser, hub.url, "/admin")
    try:
        page = pages.open()
        page.get_by_label("Admin key or token").fill(ADMIN)
        page.get_by_role("button", name="Show dashboard").click()
        card = page.locator("#sources-card")
        expect(card.get_by_role("heading", name="Sources")).to_be_visible()
        expect(card.locator("tbody tr")).to_have_count(1)
        expect(card.locator("tbody tr td").nth(0)).to_have_text("help")
        before = len(site.served(200)) + len(site.served(304))
        card.get_by_role("button", name="Sync now").click()
        for _ in range(200):  # wait for the sync the button started to reach the site
            if len(site.served(200)) + len(site.served(304)) > before:
                break
            page.wait_for_timeout(50)
        assert len(site.served(200)) + len(site.served(304)) > before
        expect(card.locator("tbody tr td").nth(6)).to_have_text("ok")
        page.locator("#lang-toggle").click()
        expect(card.get_by_role("heading", name="知識來源")).to_be_visible()
    finally:
        pages.close()
