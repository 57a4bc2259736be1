"""The admin dashboard (/admin) in a real headless Chromium against a real hub with real traffic.

One hub for the module: authentication on (an admin client, two department clients), a fake
OpenAI upstream with prices (so tokens and cost are not zero), a tight limit for one tenant,
and a scripted set of questions: cached answers, personal data, a limited call, an error,
feedback both ways, and a question that looks like HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from core.auth import digest
from tests.browser import Pages, browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = needs_browser

ADMIN = "ah_admin-dashboard-key-0000000000"
HR = "ah_hr-dashboard-key-00000000000000"
CS = "ah_cs-dashboard-key-00000000000000"
PHONE, EMAIL, TW_ID = "0912-345-678", "wang.xiaoming@example.com", "A123456789"
HTML_QUESTION = '<img src=x onerror="window.__xss=1"> How do I claim travel expenses?'
CHART_IDS = ["requests", "latency", "errors", "cache", "tenants", "limited", "pii", "feedback", "breakers"]


@pytest.fixture(scope="module")
def dashboard_hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[HubServer]:
    tmp_path = tmp_path_factory.mktemp("admin-dashboard")
    config = {
        "clients": [
            {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
            {"name": "hr-portal", "tenant": "hr", "key_sha256": [digest(HR)]},
            {"name": "cs-service", "tenant": "cs", "key_sha256": [digest(CS)]},
        ],
        "tenants": {"cs": {"rate_limit": {"max_per_user": 2, "window_sec": 60}}},
        "prices": {"gpt-4o-mini": {"input_per_1m": 150.0, "output_per_1m": 600.0}},
    }
    path = write_yaml(tmp_path / "hub.yaml", config)
    with FakeOpenAI() as upstream:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(path),
                                 OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=upstream.base_url)  # fmt: skip
        with HubServer(settings) as server:
            send_traffic(server)
            yield server


def send_traffic(hub: HubServer) -> dict[str, str]:
    """Questions from two departments; returns request ids of the answers that got feedback."""
    ids: dict[str, str] = {}

    def ask(key: str, question: str, status: int = 200) -> dict[str, Any]:
        response = httpx.post(f"{hub.url}/ask", json={"question": question}, headers={"X-API-Key": key}, timeout=10)
        assert response.status_code == status, response.text
        return response.json()

    ids["up"] = ask(HR, "How do I claim travel expenses?")["request_id"]
    assert ask(HR, "How do I claim travel expenses?")["cached"] is True
    ask(HR, f"My phone is {PHONE}, e-mail {EMAIL}, ID {TW_ID}: how is overtime paid?")
    ask(HR, HTML_QUESTION)
    ask(HR, "x" * 2001, status=400)  # too long: refused by the core, an error on the dashboard
    ids["down"] = ask(CS, "VPN 怎麼設定")["request_id"]
    ask(CS, "忘記密碼怎麼辦?")
    ask(CS, "加班規則是什麼?", status=429)  # over the cs tenant's 2 per minute
    for rating, key in (("up", HR), ("down", CS)):
        response = httpx.post(f"{hub.url}/feedback", json={"request_id": ids[rating], "rating": rating},
                              headers={"X-API-Key": key}, timeout=10)  # fmt: skip
        assert response.status_code == 204, response.text
    return ids


OpenDashboard = Callable[..., "Page"]


@pytest.fixture
def open_dashboard(browser: Browser, dashboard_hub: HubServer) -> Iterator[OpenDashboard]:  # noqa: F811
    """Opens /admin in a fresh browser context; fails on any page error or dialog."""
    pages = Pages(browser, dashboard_hub.url, "/admin")
    yield pages.open
    pages.close()


def sign_in(page: Page, key: str) -> None:
    expect(page.get_by_role("heading", name="Admin key required")).to_be_visible()
    page.get_by_label("Admin key or token").fill(key)
    page.get_by_role("button", name="Show dashboard").click()


def expect_locked(page: Page, reason: str) -> None:
    expect(page.locator("#auth")).to_be_visible()
    expect(page.locator("#auth-reason")).to_have_attribute("data-reason", reason)
    expect(page.locator("#dashboard")).to_be_hidden()
    # No data anywhere: no charts, no numbers, no questions.
    assert page.locator("#charts > *, #kpis > *, #recent tbody tr").count() == 0
    body = page.locator("body").inner_text()
    assert "travel" not in body.lower() and "VPN" not in body


def chart(page: Page, name: str) -> Any:
    return page.locator(f'[data-chart="{name}"]')


def points(page: Page, name: str) -> list[int]:
    """Data points of each line of a line chart."""
    return [int(n) for n in chart(page, name).locator("path.line").evaluate_all("ps => ps.map(p => p.dataset.points)")]


def test_admin_key_shows_charts_numbers_and_redacted_questions(open_dashboard: OpenDashboard) -> None:
    page = open_dashboard()
    expect_locked(page, "authNeeded")
    with page.expect_request("**/admin/stats?window=hour") as sent:
        sign_in(page, ADMIN)
    assert sent.value.headers["authorization"] == f"Bearer {ADMIN}"
    expect(page.locator("#dashboard")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('askhub.admin-token')") == ADMIN
    assert ADMIN not in page.evaluate("JSON.stringify(localStorage)") and ADMIN not in page.url

    # Headline numbers: 8 questions (one limited, one refused), today's cost from the fake upstream.
    expect(page.locator('[data-kpi="requests"] .kpi-value')).to_have_text("8")
    expect(page.locator('[data-kpi="errors"] .kpi-value')).to_have_text(re.compile(r"^\d+(\.\d)? %$"))
    expect(page.locator('[data-kpi="p95"] .kpi-value')).to_have_text(re.compile(r"^\d+ m?s$"))
    expect(page.locator('[data-kpi="cost"] .kpi-value')).to_have_text(re.compile(r"^\$0?\.?\d*[1-9]"))

    expect(page.locator("#charts > .chart-card")).to_have_count(len(CHART_IDS))
    for name in ("requests", "limited", "pii", "feedback"):
        expect(chart(page, name).locator("rect.bar").first).to_be_attached()
    assert chart(page, "feedback").locator("rect.bar").count() == 2  # one 👍, one 👎 (same minute: stacked)
    for name in ("latency", "errors", "cache"):
        assert max(points(page, name)) >= 1, name
    tenants = chart(page, "tenants").locator("g.tenant")
    expect(tenants).to_have_count(2)
    hr_cost = chart(page, "tenants").locator('g[data-tenant="hr"] rect.bar[data-measure="cost_usd"]')
    assert float(hr_cost.get_attribute("data-value") or 0) > 0
    assert float(hr_cost.get_attribute("width") or 0) > 0
    breaker = chart(page, "breakers").locator('[data-model="small"]')  # logical model names
    expect(breaker).to_have_attribute("data-state", "closed")
    expect(page.locator('[data-card="limited"] .card-note')).to_have_text("1 in window")

    # Recent questions: personal data redacted, HTML shown as text, feedback beside its answer.
    rows = page.locator("#recent tbody tr")
    expect(rows).to_have_count(6)
    table = page.locator("#recent").inner_text()
    for placeholder in ("[PHONE]", "[EMAIL]", "[TW_ID]"):
        assert placeholder in table
    for raw in (PHONE, EMAIL, TW_ID):
        assert raw not in page.content()
    assert HTML_QUESTION in table
    assert page.locator("#recent img, #main img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert rows.filter(has_text="VPN 怎麼設定").locator(".feedback-cell").inner_text() == "👎"
    assert "👍" in rows.filter(has_text="How do I claim travel expenses?").locator(".feedback-cell").all_inner_texts()


def test_refreshes_every_15_seconds_and_switches_to_the_day(open_dashboard: OpenDashboard) -> None:
    page = open_dashboard(clock=True)
    sign_in(page, ADMIN)
    expect(chart(page, "requests").locator("rect.bar").first).to_be_attached()
    with page.expect_request("**/admin/stats?window=hour"):
        page.clock.fast_forward(15_000)

    day = page.get_by_role("button", name="Last 24 hours")
    with page.expect_response("**/admin/stats?window=day") as answered:
        day.click()
    assert len(answered.value.json()["series"]) == 288
    expect(day).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Last hour")).to_have_attribute("aria-pressed", "false")
    expect(chart(page, "requests").locator("rect.bar").first).to_be_attached()
    assert max(points(page, "latency")) >= 1
    with page.expect_request("**/admin/stats?window=day"):
        page.clock.fast_forward(15_000)


def test_without_a_key_only_the_key_form_shows(open_dashboard: OpenDashboard, dashboard_hub: HubServer) -> None:
    assert httpx.get(f"{dashboard_hub.url}/admin/stats").status_code == 401
    page = open_dashboard()
    expect_locked(page, "authNeeded")
    expect(page.get_by_label("Admin key or token")).to_be_focused()
    expect(page.get_by_role("button", name="Last hour")).to_be_hidden()

    sign_in(page, "ah_not-a-real-key-00000000000000")
    expect_locked(page, "authRejected")
    expect(page.locator("#auth-reason")).to_contain_text("wasn't accepted")


def test_a_key_without_admin_scope_is_refused(open_dashboard: OpenDashboard) -> None:
    page = open_dashboard()
    with page.expect_response("**/admin/stats?window=hour") as answered:
        sign_in(page, HR)
    assert answered.value.status == 403
    expect_locked(page, "authForbidden")
    expect(page.locator("#auth-reason")).to_contain_text("no admin scope")

    # An admin key then opens it; forgetting the key locks it again and clears everything.
    sign_in(page, ADMIN)
    expect(chart(page, "requests").locator("rect.bar").first).to_be_attached()
    page.get_by_role("button", name="Forget key").click()
    expect_locked(page, "authNeeded")
    assert page.evaluate("sessionStorage.getItem('askhub.admin-token')") is None


def test_phone_width_in_chinese(open_dashboard: OpenDashboard) -> None:
    page = open_dashboard(locale="zh-TW", width=360, height=740)
    expect(page.locator("html")).to_have_attribute("lang", "zh-TW")
    expect(page.get_by_role("heading", name="需要管理員金鑰")).to_be_visible()
    page.get_by_label(re.compile("管理員金鑰或權杖")).fill(ADMIN)
    page.get_by_role("button", name="顯示儀表板").click()
    expect(page.locator('[data-card="requests"] .card-title')).to_have_text("每分鐘請求數")
    expect(chart(page, "requests").locator("rect.bar").first).to_be_attached()
    expect(page.locator('[data-kpi="cost"] .kpi-label')).to_have_text("今日費用")

    no_overflow = "document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
    assert page.evaluate(no_overflow)
    widths = page.locator(".chart-svg").evaluate_all("svgs => svgs.map(s => s.getBoundingClientRect().right)")
    assert widths and max(widths) <= 360
    small = page.evaluate(
        """() => [...document.querySelectorAll('button, input')]
            .filter((node) => node.checkVisibility())
            .map((node) => [node.textContent.trim() || node.id, node.getBoundingClientRect()])
            .filter(([, r]) => r.width < 40 || r.height < 36)
            .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert small == [], "tap targets too small"

    # The language toggle switches every label, charts included.
    page.get_by_role("button", name=re.compile("English")).click()
    expect(page.locator('[data-card="requests"] .card-title')).to_have_text("Requests per minute")
    expect(page.locator("#recent-title")).to_have_text("Recent questions")
