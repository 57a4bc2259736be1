"""Operating handoffs: GET /admin/handoffs (admin scope, no customer data) and its dashboard card
in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from core.auth import digest
from core.handoff import Customer, CustomerMessage
from tests.browser import Pages, browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import HubServer, make_settings, write_yaml
from tests.test_handoff import RecordingChannel, RecordingDesk

ADMIN, STAFF = "ah_handoff-admin-key-000000000000", "ah_handoff-staff-key-000000000000"
CUSTOMER = "Uhandoffadmincustomer"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("handoff-admin")
    config = write_yaml(tmp / "hub.yaml", {
        "clients": [{"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
                    {"name": "staff", "tenant": "hr", "key_sha256": [digest(STAFF)]}],
        "handoff": {"slack_channel": "C0AGENTS"},
    })  # fmt: skip
    settings = make_settings(tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), SLACK_BOT_TOKEN="xoxb-t")
    with HubServer(settings) as server:
        server.hub.handoff.register_desk(RecordingDesk())
        server.hub.handoff.register_customer("line", RecordingChannel())
        customer = Customer(
            platform="line", tenant="cs", conversation=CUSTOMER, user=CUSTOMER, address={"to": CUSTOMER}
        )
        got = server.run(
            server.hub.handoff.intercept(CustomerMessage(customer, "ev1", "talk to a person, 0912-345-678"))
        )
        assert got.action == "started"
        yield server


def test_open_handoffs_for_admins_only_without_customer_data(hub: HubServer) -> None:
    assert httpx.get(f"{hub.url}/admin/handoffs").status_code == 401
    assert httpx.get(f"{hub.url}/admin/handoffs", headers={"X-API-Key": STAFF}).status_code == 403
    response = httpx.get(f"{hub.url}/admin/handoffs", headers={"X-API-Key": ADMIN})
    assert response.status_code == 200
    body = response.json()
    assert body["enabled"] is True
    (row,) = body["handoffs"]
    assert (row["platform"], row["tenant"], row["reason"], row["taken_by"]) == ("line", "cs", "trigger", None)
    assert row["waiting_sec"] >= 0 and row["desk_channel"] == "C0AGENTS"
    assert CUSTOMER not in response.text and "0912" not in response.text and "person" not in response.text


@needs_browser
def test_the_dashboard_card_lists_open_handoffs(browser: Browser, hub: HubServer) -> None:  # noqa: F811
    pages = Pages(browser, hub.url, "/admin")
    try:
        page = pages.open()
        page.get_by_label("Admin key or token").fill(ADMIN)
        page.get_by_role("button", name="Show dashboard").click()
        card = page.locator("#handoffs-card")
        expect(card.get_by_role("heading", name="Open handoffs")).to_be_visible()
        expect(card.locator("tbody tr")).to_have_count(1)
        expect(card.locator("tbody tr td").nth(0)).to_have_text("line")
        expect(card.locator("tbody tr td").nth(1)).to_have_text("cs")
        expect(card.locator("tbody tr td").nth(5)).to_have_text("not yet")
        assert CUSTOMER not in page.content()
        page.locator("#lang-toggle").click()
        expect(card.get_by_role("heading", name="轉接真人中的對話")).to_be_visible()
    finally:
        pages.close()
