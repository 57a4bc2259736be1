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

pytestmark = needs_browser

ADMIN, HR = "ah_verified-ui-admin-key-000000", "ah_verified-ui-hr-key-00000000"
QUESTION = "How do I claim travel expenses?"
FIXED = "Claims go through SpendWise within 30 days; finance pays them with the next salary."


@pytest.fixture
def dashboard_hub(tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    config = {
        "clients": [
            {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
            {"name": "hr-portal", "tenant": "hr", "key_sha256": [digest(HR)]},
        ],
        "verified": {"file": str(tmp_path / "verified.json")},
    }
    with FakeOpenAI() as upstream:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(write_yaml(tmp_path / "h.yaml", config)),
                                 OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=upstream.base_url)  # fmt: skip
        with HubServer(settings) as server:
            yield server


def hr_ask(hub: HubServer) -> dict[str, Any]:
    response = httpx.post(f"{hub.url}/ask", json={"question": QUESTION}, headers={"X-API-Key": HR}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_saves_edits_and_retires_a_verified_answer_from_a_thumbs_down(
    browser: Browser,  # noqa: F811 - the browser fixture
    dashboard_hub: HubServer,
) -> None:
    hub = dashboard_hub
    first = hr_ask(hub)
    assert first["model"] != "verified"
    vote = httpx.post(f"{hub.url}/feedback", json={"request_id": first["request_id"], "rating": "down"},
                      headers={"X-API-Key": HR}, timeout=10)  # fmt: skip
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
    expect(page.get_by_label("Question", exact=True)).to_have_value(QUESTION)
    page.get_by_label("Answer", exact=True).fill(FIXED)
    page.get_by_label("Verified by").fill("Dana Admin")
    page.get_by_role("button", name="Save verified answer").click()
    listed = card.locator("#verified-table tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text(FIXED)
    expect(listed.first).to_contain_text("Dana Admin")

    served = hr_ask(hub)
    assert served["answer"] == FIXED and served["verified"]["by"] == "Dana Admin"

    listed.first.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Answer", exact=True)).to_have_value(FIXED)
    page.get_by_label("Answer", exact=True).fill("EDITED: claim in SpendWise.")
    page.get_by_role("button", name="Save verified answer").click()
    expect(listed.first).to_contain_text("EDITED: claim in SpendWise.")
    assert hr_ask(hub)["answer"] == "EDITED: claim in SpendWise."

    listed.first.get_by_role("button", name="Retire").click()
    expect(listed.first).to_have_attribute("data-state", "retired")
    assert "verified" not in hr_ask(hub)
    pages.close()


@pytest.fixture
def portal_hub(tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    """Local demo mode (no key), with its own verified answers file."""
    config = write_yaml(tmp_path / "h.yaml", {"verified": {"file": str(tmp_path / "verified.json")}})
    with HubServer(make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config))) as server:
        yield server


def test_the_portal_shows_who_verified_an_answer(browser: Browser, portal_hub: HubServer) -> None:  # noqa: F811
    hub = portal_hub
    hub.run(hub.hub.verified.save(QUESTION, FIXED, "default", "Alice Chen"))
    pages = Pages(browser, hub.url, "/")
    page = pages.open()
    answer = portal_ask(page, QUESTION)
    expect(answer.locator(".answer-text")).to_contain_text("SpendWise within 30 days")
    expect(answer.locator(".badge-verified")).to_have_text("✅ Verified by Alice Chen")
    expect(answer.locator(".model-name")).to_have_text("verified")
    other = portal_ask(page, "How do I reset my MFA?")
    expect(other.locator(".badge-verified")).to_have_count(0)
    pages.close()
