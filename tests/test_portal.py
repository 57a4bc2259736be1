"""The web portal in a real headless Chromium (Debian's `chromium`), against the real app."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from tests.browser import Pages, browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import HubServer

pytestmark = needs_browser

CJK = re.compile(r"[\u3400-\u9fff]")
OpenPortal = Callable[..., "Page"]


@pytest.fixture
def open_portal(browser: Browser, hub: HubServer) -> Iterator[OpenPortal]:  # noqa: F811 - the browser fixture
    """Opens the portal of a fresh hub in a fresh browser context; fails on any page error or dialog."""
    pages = Pages(browser, hub.url, "/")
    yield pages.open
    pages.close()


def ask(page: Page, question: str) -> Any:
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    return last_answer(page)


def last_answer(page: Page) -> Any:
    """The newest answer, once it is complete (wait_for polls in the page: quicker than expect)."""
    done = page.locator('#thread > li.msg-answer:last-child[aria-busy="false"]')
    done.wait_for()
    answers = page.locator(".msg-answer")
    return answers.nth(answers.count() - 1)  # a locator that keeps pointing at this answer


def answer_payload(**overrides: Any) -> dict[str, Any]:
    body = {
        "question": "How do I claim travel expenses?",
        "answer": "Claims go through SpendWise. [1]\n- Submit within 30 days of the trip. [2]",
        "sources": [
            {
                "id": "travel.md#0",
                "title": "Travel Expense Claims",
                "text": "Use SpendWise.",
                "score": 0.9123,
            },
            {"id": "travel.md#1", "title": "Claim Deadlines", "text": "Within 30 days.", "score": 0.5},
        ],
        "model": "gpt-test",
        "cached": False,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0001},
        "request_id": "req-canned-1",
    }
    body.update(overrides)
    return body


def fulfil_json(route: Route, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    route.fulfill(status=status, content_type="application/json", headers=headers, body=json.dumps(body))


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def test_question_shows_answer_sources_and_model(open_portal: OpenPortal) -> None:
    page = open_portal()
    with page.expect_request("**/ask") as sent:
        answer = ask(page, "How do I claim travel expenses?")
    request = sent.value
    body = request.post_data_json
    assert body["question"] == "How do I claim travel expenses?"
    assert body["stream"] is True
    uuid.UUID(body["conversation_id"])
    assert request.headers["x-askhub-client"] == "portal"
    assert "authorization" not in request.headers

    expect(answer.locator(".answer-text")).not_to_be_empty()
    titles = answer.locator(".sources .source-title")
    expect(titles.first).to_be_visible()
    expect(titles.first).to_contain_text("Travel")
    expect(answer.locator(".source-score").first).to_have_text(re.compile(r"\d\.\d\d$"))
    expect(answer.locator(".model-name")).to_have_text("extractive")
    expect(answer.locator(".latency")).to_have_text(re.compile(r"^\D*\d+(\.\d)? m?s$"))
    expect(answer.locator(".request-id code")).to_have_text(re.compile(r"\S+"))
    expect(answer.locator(".badge-cached")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(page.locator("#empty-state")).to_be_hidden()

    # A citation is a link that opens and highlights the source it points to.
    cite = answer.locator("a.cite").first
    number = int(cite.inner_text())
    cite.click()
    source = answer.locator(".sources > li").nth(number - 1)
    expect(source).to_have_class(re.compile(r"\bflash\b"))
    expect(source.locator("details")).to_have_attribute("open", "")


def test_chinese_example_question(open_portal: OpenPortal) -> None:
    page = open_portal(locale="zh-TW")
    expect(page.locator("html")).to_have_attribute("lang", "zh-TW")
    expect(page.locator("#send")).to_have_text("送出")

    page.get_by_role("button", name="加班規則是什麼?").click()
    answer = last_answer(page)
    expect(answer.locator(".answer-text")).to_have_text(CJK)
    expect(answer.locator(".sources > li").first).to_be_visible()
    expect(page.locator(".msg-question .bubble")).to_have_text("加班規則是什麼?")

    # The language toggle switches the labels, answers included.
    page.locator("#lang-toggle").click()
    expect(page.locator("#send")).to_have_text("Send")
    expect(answer.locator(".sources-title")).to_have_text("Sources")


def test_phone_width_has_no_horizontal_scroll(open_portal: OpenPortal) -> None:
    page = open_portal(width=360, height=740)
    no_overflow = "document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
    assert page.evaluate(no_overflow)
    box = page.get_by_label("Your question")
    expect(box).to_be_visible()
    expect(box).to_be_in_viewport()

    answer = ask(page, "How do I claim travel expenses?")
    answer.locator(".sources summary").first.click()
    expect(answer.locator(".passage p").first).to_be_visible()
    assert page.evaluate(no_overflow)
    assert page.evaluate("document.querySelector('#main').scrollWidth <= innerWidth")
    expect(box).to_be_in_viewport()

    small = page.evaluate(
        """() => [...document.querySelectorAll('button, summary, input, textarea')]
            .filter((node) => node.checkVisibility())
            .map((node) => [node.textContent.trim() || node.id, node.getBoundingClientRect()])
            .filter(([, r]) => r.width < 40 || r.height < 40)
            .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert small == [], "tap targets under 40 px"


def test_unanswerable_question_shows_no_sources(open_portal: OpenPortal) -> None:
    page = open_portal()
    answer = ask(page, "What is the airspeed velocity of an unladen swallow?")
    expect(answer.locator(".answer-text")).to_be_visible()
    expect(answer.locator(".answer-text")).not_to_be_empty()
    expect(answer.locator(".sources li")).to_have_count(0)
    expect(answer.locator(".model-name")).to_have_text("none")


def test_rate_limit_shows_a_readable_message_with_retry_time(open_portal: OpenPortal) -> None:
    page = open_portal()
    body = {"error": {"type": "rate_limited", "message": "slow down"}}
    page.route("**/ask", lambda route: fulfil_json(route, 429, body, {"Retry-After": "7"}))
    answer = ask(page, "How do I claim travel expenses?")
    expect(answer.locator(".error-title")).to_have_text(re.compile(r"try again in 7 seconds"))
    expect(answer.locator(".error-detail")).to_have_text("slow down")
    expect(answer.get_by_role("button", name=re.compile("Try again in [1-7] s"))).to_be_disabled()
    expect(answer).not_to_contain_text("{")
    expect(answer).not_to_contain_text("rate_limited")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_401_asks_for_a_key_and_sends_it_as_bearer(open_portal: OpenPortal) -> None:
    page = open_portal()
    seen: list[str | None] = []

    def handler(route: Route) -> None:
        auth = route.request.headers.get("authorization")
        seen.append(auth)
        if auth is None:
            fulfil_json(route, 401, {"error": {"type": "unauthorized", "message": "missing API key"}})
        else:
            fulfil_json(route, 200, answer_payload())

    page.route("**/ask", handler)
    key_field = page.get_by_label("API key or token")
    expect(key_field).to_be_hidden()
    answer = ask(page, "How do I claim travel expenses?")
    expect(answer.locator(".error-title")).to_contain_text("API key or token")
    expect(key_field).to_be_visible()
    expect(key_field).to_be_focused()

    key_field.fill("sk-portal-test")
    page.get_by_role("button", name="Save and retry").click()
    answer = last_answer(page)
    expect(answer.locator(".model-name")).to_have_text("gpt-test")
    expect(key_field).to_be_hidden()
    assert seen == [None, "Bearer sk-portal-test"]
    assert page.evaluate("sessionStorage.getItem('askhub.token')") == "sk-portal-test"
    assert "sk-portal-test" not in page.evaluate("JSON.stringify(localStorage)")
    assert "sk-portal-test" not in page.url

    ask(page, "And per diem?")
    assert seen[-1] == "Bearer sk-portal-test"

    page.get_by_role("button", name="Forget key").click()
    expect(page.get_by_role("button", name="Forget key")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('askhub.token')") is None
    ask(page, "And hotels?")
    assert seen[-1] is None


def test_streamed_answer_renders_final_answer_and_sources(open_portal: OpenPortal) -> None:
    page = open_portal()
    done = answer_payload(cached=True)
    stream = sse("delta", {"text": "Claims go through "}) + sse("delta", {"text": "SpendWise. [1]"}) + sse("done", done)
    page.route("**/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream))
    answer = ask(page, "How do I claim travel expenses?")
    text = answer.locator(".answer-text")
    expect(text).to_contain_text("Claims go through SpendWise.")
    expect(text.locator("li")).to_have_text("Submit within 30 days of the trip. 2")
    expect(text.locator("a.cite")).to_have_count(2)
    expect(answer.locator(".streaming")).to_have_count(0)
    expect(answer.locator(".sources .source-title")).to_have_text(["Travel Expense Claims", "Claim Deadlines"])
    expect(answer.locator(".source-score").first).to_contain_text("0.91")
    expect(answer.locator(".model-name")).to_have_text("gpt-test")
    expect(answer.locator(".badge-cached")).to_be_visible()
    expect(answer.locator(".request-id code")).to_have_text("req-canned-1")


def test_stream_error_keeps_partial_text_marked_cut_off(open_portal: OpenPortal) -> None:
    page = open_portal()
    stream = sse("delta", {"text": "Claims go through Spend"}) + sse(
        "error", {"error": {"type": "upstream_error", "message": "the model stopped answering"}}
    )
    page.route("**/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream))
    answer = ask(page, "How do I claim travel expenses?")
    expect(answer.locator(".answer-text")).to_have_text("Claims go through Spend")
    expect(answer.locator(".cut-off")).to_be_visible()
    expect(answer.locator(".error-detail")).to_have_text("the model stopped answering")
    expect(answer.get_by_role("button", name="Try again")).to_be_enabled()


def test_feedback_thanks_on_success_and_fails_quietly(open_portal: OpenPortal) -> None:
    page = open_portal()
    # The real hub may not have /feedback yet: a 404 gives a quiet note, never an alert.
    answer = ask(page, "How do I claim travel expenses?")
    with page.expect_response("**/feedback"):
        answer.get_by_role("button", name="Not helpful").click()
    expect(answer.locator(".feedback-note")).to_have_text(re.compile(r"\S"))

    posted: list[dict[str, Any]] = []

    def feedback(route: Route) -> None:
        posted.append(route.request.post_data_json)
        route.fulfill(status=204)

    page.route("**/feedback", feedback)
    answer = ask(page, "Can I work from home on Fridays?")
    request_id = answer.locator(".request-id code").inner_text()
    answer.get_by_role("button", name="Helpful", exact=True).click()
    expect(answer.locator(".feedback-note")).to_have_text("Thanks for the feedback!")
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    assert posted == [{"request_id": request_id, "rating": "up"}]


def test_conversation_id_kept_until_new_conversation(open_portal: OpenPortal) -> None:
    page = open_portal()
    ids: list[str] = []

    def record(request: Request) -> None:
        if request.url.endswith("/ask"):
            ids.append(request.post_data_json["conversation_id"])

    page.on("request", record)
    box = page.get_by_label("Your question")

    # Shift+Enter is a newline, and Enter while an IME is composing does not send.
    box.fill("加班")
    box.dispatch_event("keydown", {"key": "Enter", "isComposing": True, "bubbles": True, "cancelable": True})
    box.press("Shift+Enter")
    expect(box).to_have_value("加班\n")
    box.fill("加班規則是什麼?")
    box.press("Enter")
    last_answer(page)
    ask(page, "那請假呢?")
    assert len(ids) == 2 and ids[0] == ids[1]

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#thread > li")).to_have_count(0)
    expect(page.locator("#empty-state")).to_be_visible()
    ask(page, "How do I claim travel expenses?")
    expect(page.locator("#thread > li")).to_have_count(2)
    assert len(ids) == 3 and ids[2] != ids[0]
    uuid.UUID(ids[2])


def test_a_synced_source_links_home_and_a_script_url_does_not(open_portal: OpenPortal) -> None:
    page = open_portal()
    sources = [
        {
            "id": "help/r.md#0",
            "title": "Returns",
            "text": "30 days.",
            "score": 0.9,
            "url": "https://help.example.com/r",
        },
        {"id": "evil.md#0", "title": "Evil", "text": "x", "score": 0.5, "url": "javascript:alert(1)"},
    ]
    body = answer_payload(sources=sources)
    page.route("**/ask", lambda route: fulfil_json(route, 200, body))
    answer = ask(page, "How do returns work?")
    link = answer.locator(".sources a.source-title")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", "https://help.example.com/r")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(answer.locator(".sources span.source-title")).to_have_text("Evil")
