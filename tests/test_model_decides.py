"""With a chat model configured, the model decides what the knowledge base cannot answer
(DESIGN.md, "I don't know"): a question with any evidence reaches it with its best passages,
its fixed "no answer" signal becomes the polite "I don't know" (handoff offer, outcome, metrics,
query log, never shown as such, streamed or not), and only a question with no evidence at all is
declined without a call. A small zh-TW knowledge base and short English questions, the semantic
model (e5) as shipped, the fake upstream recording every call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.auth import digest
from core.messages import NO_KNOWLEDGE
from tests.conftest import HubServer, make_settings, metric, wait_for_metric, write_yaml
from tests.fakes.openai_upstream import Call, FakeOpenAI, content_text
from tests.fakes.slack_api import FakeSlack
from tests.test_walls_platforms import wait_until

KEY = "ah_model-decides-key-000000000000"
NO_ANSWER = "NO_ANSWER"  # the prompt's signal (core.llm.prompt.NO_ANSWER), spelled out: the contract
MODEL = "gpt-4o-mini"  # CHAT_MODEL's default: the route "default" answers with it

DOCS = {
    "parking.md": "# 停車辦法\n\n## 停車費\n\n員工停車場位於大樓地下二樓，停車費每月 1,500 元，由薪資直接扣款。"
    "車位每半年抽籤一次。\n\n## 電動車充電\n\n地下二樓設有 6 座電動車充電樁，充電免費，每次最多停放四小時。\n",
    "payroll.md": "# 薪資發放\n\n## 發薪日\n\n每月 5 日發放上個月的薪資，遇假日提前至前一個工作日。"
    "薪資單於發薪日前一天寄到公司信箱。\n",
    "expenses.md": "# 費用報銷\n\n## 申請期限\n\n出差或代墊的費用須於支出後 30 天內在報銷系統提出申請，"
    "並附上發票或收據，逾期不予受理。\n",
    "travel.md": "# 國內出差\n\n## 住宿上限\n\n出差住宿費用每晚上限：台北 3,200 元，其他縣市 2,400 元。"
    "超出部分須由部門主管核准。\n",
    "leave.md": "# 請假規定\n\n## 特別休假\n\n到職滿一年的同仁享有七天特別休假，須在人資系統提出申請並經主管核准。\n",
    "wifi.md": "# 辦公室無線網路\n\n## 連線方式\n\n訪客請連線 Guest 網路，密碼每週一更新並張貼於櫃台。"
    "員工請使用公司帳號登入 Staff 網路。\n",
    "lunch.md": "# 員工餐廳\n\n## 供餐時間\n\n員工餐廳位於三樓，午餐供應時間為 11:30 至 13:30，每餐補助 80 元。\n",
    "insurance.md": "# 團體保險\n\n## 保障內容\n\n公司為全體員工投保團體壽險與醫療險，眷屬可自費加保，"
    "請於每年一月向人資申請。\n",
}


@dataclass
class Desk:
    hub: HubServer
    model: FakeOpenAI


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp("model-decides")
    kb = tmp / "kb"
    kb.mkdir()
    for name, text in DOCS.items():
        (kb / name).write_text(text, encoding="utf-8")
    config = write_yaml(tmp / "hub.yaml", {
        "clients": [{"name": "portal", "tenant": "hr", "key_sha256": [digest(KEY)]}],
        "handoff": {"slack_channel": "C0AGENTS"},  # the portal door can hand a customer to a person
        "cache": {"enabled": False},  # each test scripts its own reply to the same questions
    })  # fmt: skip
    with FakeOpenAI() as model, FakeSlack() as slack:
        settings = make_settings(
            tmp, KB_DIR=str(kb), EMBEDDINGS="e5", HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET="slack-secret", SLACK_API_URL=slack.api_url,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield Desk(hub, model)


@pytest.fixture
def fresh(desk: Desk) -> Desk:
    desk.model.reset()
    return desk


def ask(desk: Desk, question: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{desk.hub.url}/ask", json={"question": question, **body},
                          headers={"X-API-Key": KEY, "X-AskHub-Client": "portal"}, timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def ask_streamed(desk: Desk, question: str, **body: Any) -> tuple[list[str], dict[str, Any]]:
    """The deltas' texts and the done event's body."""
    with httpx.stream("POST", f"{desk.hub.url}/ask", json={"question": question, "stream": True, **body},
                      headers={"X-API-Key": KEY, "X-AskHub-Client": "portal"}, timeout=60) as response:  # fmt: skip
        assert response.status_code == 200
        frames = response.read().decode()
    deltas, done = [], None
    for block in frames.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "delta":
            deltas.append(json.loads(lines["data"])["text"])
        elif lines.get("event") == "done":
            done = json.loads(lines["data"])
    assert done is not None, frames
    return deltas, done


def answer_calls(model: FakeOpenAI) -> list[Call]:
    """The calls that asked for an answer: their last message holds the numbered passages (the
    question rewrite's calls have none)."""
    return [
        c
        for c in model.calls_for(MODEL)
        if content_text((c.json or {})["messages"][-1]["content"]).startswith("Context:")
    ]


def prompt_of(call: Call) -> str:
    return "\n".join(content_text(m.get("content")) for m in (call.json or {})["messages"])


def declines(desk: Desk) -> float:
    """The portal's questions counted as declined ("I don't know")."""
    return metric(desk.hub.url, "hub_asks_total", platform="web", outcome="no_knowledge")


@pytest.mark.parametrize(
    ("question", "passage"),
    [
        ("What is the parking fee?", "停車費每月 1,500 元"),
        ("When is payday?", "每月 5 日發放"),
        ("Deadline for expense reports?", "30 天內"),
        ("Cache check 3f9a2c1b: what's the hotel cap in Taipei? 🏨", "台北 3,200 元"),
    ],
)
def test_an_english_question_about_a_chinese_kb_reaches_the_model_with_its_passage(
    fresh: Desk, question: str, passage: str
) -> None:
    """Fails on the floor that declined these before any model was asked ("model": "none", no call)."""
    body = ask(fresh, question)
    calls = answer_calls(fresh.model)
    assert len(calls) == 1, body
    assert passage in prompt_of(calls[0])
    assert body["model"] == MODEL and body["answer"].startswith(f"[{MODEL}]")  # the model's own answer
    assert any(passage in s["text"] for s in body["sources"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("signal", [NO_ANSWER, ' **"NO_ANSWER"** \n', "`NO\\_ANSWER`."])
def test_the_models_no_answer_becomes_the_polite_answer_with_the_handoff_offer(
    fresh: Desk, stream: bool, signal: str, tmp_path: Path
) -> None:
    """The signal is never shown; the asker gets today's "I don't know" and the portal's offer of a
    person, counted as a decline (metric, query log). Fails where the signal was passed on as the answer."""
    fresh.model.set_behavior(MODEL, reply=signal)
    before = declines(fresh)
    question, conversation = "When is payday?", f"c-{stream}-{abs(hash(signal))}"
    if stream:
        deltas, body = ask_streamed(fresh, question, conversation_id=conversation)
        assert "".join(deltas) == NO_KNOWLEDGE["en"]  # nothing of the signal went out first
    else:
        body = ask(fresh, question, conversation_id=conversation)
    assert answer_calls(fresh.model), "the model was asked"
    assert body["answer"] == NO_KNOWLEDGE["en"] and body["sources"] == []
    assert body["model"] == MODEL  # the model that really answered; "none" is for no call at all
    assert body["handoff_offer"] == {"send": "talk to a person"}
    wait_for_metric(fresh.hub.url, "hub_asks_total", before, platform="web", outcome="no_knowledge")
    log = Path(fresh.hub.settings.log_file)
    line = wait_until(lambda: next((json.loads(x) for x in log.read_text().splitlines()
                                    if body["request_id"] in x and '"askhub.query"' in x), None))  # fmt: skip
    assert line["outcome"] == "no_knowledge" and line["model"] == MODEL


def test_a_zh_question_gets_the_zh_polite_answer(fresh: Desk) -> None:
    fresh.model.set_behavior(MODEL, reply=NO_ANSWER)
    assert ask(fresh, "停車費多少？")["answer"] == NO_KNOWLEDGE["zh-TW"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_real_answer_that_starts_like_the_signal_is_streamed_whole(fresh: Desk, stream: bool) -> None:
    """Held back while it might be the signal, then shown in full: a short "No." is an answer."""
    fresh.model.set_behavior(MODEL, reply="No. Parking costs 1,500 a month [1].")
    if stream:
        deltas, body = ask_streamed(fresh, "Is parking free?")
        assert "".join(deltas) == "No. Parking costs 1,500 a month [1]."
    else:
        body = ask(fresh, "Is parking free?")
    assert body["answer"] == "No. Parking costs 1,500 a month [1]." and body["model"] == MODEL


@pytest.mark.parametrize("question", ["Who painted the Mona Lisa?", "Write me a poem about the sea"])
def test_a_question_with_no_evidence_does_not_call_the_model(fresh: Desk, question: str) -> None:
    """No lexical match and no nearer than off-topic questions get: "I don't know" without a call."""
    before = declines(fresh)
    body = ask(fresh, question)
    wait_for_metric(fresh.hub.url, "hub_asks_total", before, platform="web", outcome="no_knowledge")
    assert body["model"] == "none" and body["answer"] == NO_KNOWLEDGE["en"]
    assert fresh.model.calls == []  # neither an answer nor a rewrite was asked for


def test_the_signal_is_told_from_answers() -> None:
    from core.llm.prompt import NO_ANSWER as SIGNAL
    from core.llm.prompt import SYSTEM, is_no_answer, may_be_no_answer

    assert SIGNAL == NO_ANSWER and f"reply with exactly {NO_ANSWER}" in SYSTEM
    for reply in (
        NO_ANSWER,
        "no_answer",
        "**NO_ANSWER**",
        "> NO_ANSWER",
        "「NO_ANSWER」",
        "NO_ANSWER\n\nThe passages…",
    ):
        assert is_no_answer(reply), reply
    for reply in ("No.", "NO_ANSWER is not what I say", "There is no answer fee [1].", ""):
        assert not is_no_answer(reply), reply
    assert may_be_no_answer("**NO_A") and may_be_no_answer("No") and not may_be_no_answer("No fee")
    assert not may_be_no_answer("NO_ANSWER\n")  # a complete first line: decided


def chat(desk: Desk, question: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": "kb", "messages": [{"role": "user", "content": question}], "stream": stream}
    return httpx.post(f"{desk.hub.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=60)  # fmt: skip


def streamed_text(response: httpx.Response) -> str:
    parts = []
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices") or ():
                parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts)


def test_v1_kb_gives_the_model_the_passage_for_an_english_question(fresh: Desk) -> None:
    """Fails on the floor that left model ``kb`` with "(nothing relevant in the knowledge base)"."""
    response = chat(fresh, "What is the parking fee?")
    assert response.status_code == 200, response.text
    (call,) = fresh.model.calls_for(MODEL)
    assert "停車費每月 1,500 元" in content_text((call.json or {})["messages"][0]["content"])
    assert response.json()["choices"][0]["message"]["content"].startswith(f"[{MODEL}]")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_v1_kb_turns_the_no_answer_signal_into_the_polite_answer(fresh: Desk, stream: bool) -> None:
    """The client never sees the signal, streamed or not. Fails where it was relayed as the answer."""
    fresh.model.set_behavior(MODEL, reply="**NO_ANSWER**")
    response = chat(fresh, "When is payday?", stream=stream)
    assert response.status_code == 200, response.text
    assert fresh.model.calls_for(MODEL)
    assert "NO_A" not in response.text.replace("\\", "")
    text = streamed_text(response) if stream else response.json()["choices"][0]["message"]["content"]
    assert text == NO_KNOWLEDGE["en"]
    if stream:
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert response.json()["model"] == MODEL and response.json()["usage"]["completion_tokens"] > 0


def test_v1_kb_streams_a_real_answer_whole(fresh: Desk) -> None:
    fresh.model.set_behavior(MODEL, reply="No. Parking costs 1,500 a month [1].")
    response = chat(fresh, "Is parking free?", stream=True)
    assert streamed_text(response) == "No. Parking costs 1,500 a month [1]."
