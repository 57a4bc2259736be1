"""Verified answers in real headless Chromium: the dashboard saves one for a 👎-marked answer,
edits and retires it; the portal shows an answer's "Verified by" mark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from core.auth import digest
from tests.browser import Pages, browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_admin_dashboard import sign_in
from tests.test_portal import ask as portal_ask
from tests.test_verified import kb  # noqa: F401 - the two-collection knowledge base fixture

pytestmark = needs_browser

ADMIN, CS = "ah_verified-ui-admin-key-000000", "ah_verified-ui-cs-key-00000000"
RETURNS = "How do I return an order?"
FIXED_RETURNS = "Open the order page, choose Return, and the courier collects the parcel."


@pytest.fixture
def dashboard_hub(tmp_path: Path, kb: tuple[Path, Path]) -> Iterator[HubServer]:  # noqa: F811
    """Collections ``internal`` and ``public``; the customer desk ``cs`` reads ``public`` only."""
    config = {
        "collections": {"internal": {"path": "internal"}, "public": {"path": "public"}},
        "tenants": {"cs": {"collections": ["public"]}},
        "clients": [
            {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
            {"name": "cs-desk", "tenant": "cs", "key_sha256": [digest(CS)]},
        ],
        "verified": {"file": str(tmp_path / "verified.json")},
    }
    with FakeOpenAI() as upstream:
        settings = make_settings(tmp_path, KB_DIR=str(kb[0]), INDEX_DIR=str(kb[1]),
                                 HUB_CONFIG=str(write_yaml(tmp_path / "h.yaml", config)),
                                 OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=upstream.base_url)  # fmt: skip
        with HubServer(settings) as server:
            yield server


def cs_ask(hub: HubServer) -> dict[str, Any]:
    response = httpx.post(f"{hub.url}/ask", json={"question": RETURNS}, headers={"X-API-Key": CS}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_saves_edits_and_retires_a_verified_answer_from_a_thumbs_down(
    dashboard_hub: HubServer,  # first: its index is built before Playwright's loop runs
    browser: Browser,  # noqa: F811 - the browser fixture
) -> None:
    hub = dashboard_hub
    first = cs_ask(hub)
    assert first["model"] != "verified"
    vote = httpx.post(f"{hub.url}/feedback", json={"request_id": first["request_id"], "rating": "down"},
                      headers={"X-API-Key": CS}, timeout=10)  # fmt: skip
    assert vote.status_code == 204
    hub.run(hub.hub.feedback.flush())
    hub.run(hub.hub.stats.flush())

    pages = Pages(browser, hub.url, "/admin")
    page: Page = pages.open()
    sign_in(page, ADMIN)
    card = page.locator("#verified")
    expect(card.get_by_role("heading", name="Verified answers")).to_be_visible()
    expect(card.get_by_text("No verified answers yet.")).to_be_visible()

    row = page.locator(f'#recent tbody tr[data-request-id="{first["request_id"]}"]')
    row.get_by_role("button", name="Verify an answer").click()
    expect(page.get_by_label("Question", exact=True)).to_have_value(RETURNS)
    expect(page.get_by_label("Collection", exact=True)).to_have_value("public")  # what the customer's tenant reads
    page.get_by_label("Answer", exact=True).fill(FIXED_RETURNS)
    page.get_by_label("Verified by").fill("Dana Admin")
    page.get_by_role("button", name="Save verified answer").click()
    listed = card.locator("#verified-table tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text(FIXED_RETURNS)
    expect(listed.first).to_contain_text("Dana Admin")

    served = cs_ask(hub)
    assert served["answer"] == FIXED_RETURNS and served["verified"]["by"] == "Dana Admin"

    listed.first.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Answer", exact=True)).to_have_value(FIXED_RETURNS)
    page.get_by_label("Answer", exact=True).fill("EDITED: claim in SpendWise.")
    page.get_by_role("button", name="Save verified answer").click()
    expect(listed.first).to_contain_text("EDITED: claim in SpendWise.")
    assert cs_ask(hub)["answer"] == "EDITED: claim in SpendWise."

    listed.first.get_by_role("button", name="Retire").click()
    expect(listed.first).to_have_attribute("data-state", "retired")
    assert "verified" not in cs_ask(hub)
    pages.close()


@pytest.fixture
def portal_hub(tmp_path: Path, kb: tuple[Path, Path]) -> Iterator[HubServer]:  # noqa: F811
    """Local demo mode (no key, the offline answerer), with its own verified answers file."""
    config = write_yaml(tmp_path / "h.yaml", {"collections": {"internal": {"path": "internal"},
                                                              "public": {"path": "public"}},
                                              # demo mode's tenant names its collections (the wall fails closed)
                                              "tenants": {"default": {"collections": ["internal", "public"]}},
                                              "verified": {"file": str(tmp_path / "verified.json")}})  # fmt: skip
    settings = make_settings(tmp_path, KB_DIR=str(kb[0]), INDEX_DIR=str(kb[1]), HUB_CONFIG=str(config))
    with HubServer(settings) as server:
        yield server


def test_the_portal_shows_who_verified_an_answer(portal_hub: HubServer, browser: Browser) -> None:  # noqa: F811
    hub = portal_hub
    hub.run(hub.hub.verified.save(RETURNS, FIXED_RETURNS, "public", "Alice Chen"))
    pages = Pages(browser, hub.url, "/")
    page = pages.open()
    answer = portal_ask(page, RETURNS)
    expect(answer.locator(".answer-text")).to_contain_text("the courier collects the parcel")
    expect(answer.locator(".badge-verified")).to_have_text("✅ Verified by Alice Chen")
    expect(answer.locator(".model-name")).to_have_text("verified")
    other = portal_ask(page, "How is the year-end bonus calculated?")
    expect(other.locator(".badge-verified")).to_have_count(0)
    pages.close()
