"""The Telegram door: the real python-telegram-bot ``Bot`` against a fake Telegram Bot API.

Updates are posted to the real hub on loopback with the secret token Telegram sends
(``X-Telegram-Bot-Api-Secret-Token``); the fake records what each chat sees and refuses edits
faster than Telegram allows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import logs
from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.telegram_api import BOT_ID, BOT_TOKEN, BOT_USERNAME, FakeTelegram

SECRET_TOKEN = "telegram-secret-token-for-tests"
VPN_QUESTION = "How do I connect to the VPN with FortiClient?"
_ids = itertools.count(int(time.time()) * 1000)


def telegram_env(fake: FakeTelegram) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET_TOKEN, "TELEGRAM_API_URL": fake.url}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as tg:
        yield tg


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def module_hub(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeTelegram, model: FakeOpenAI
) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("telegram")
    config = write_yaml(tmp / "hub.yaml", {"telegram": {"tenant": "cs", "progress_interval_sec": 1.0}})
    settings = make_settings(tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk",
                             OPENAI_BASE_URL=model.base_url, **telegram_env(fake))  # fmt: skip
    with HubServer(settings) as server:
        yield server


@pytest.fixture
def hub(module_hub: HubServer, fake: FakeTelegram) -> HubServer:
    fake.reset()
    return module_hub


# --- updates as Telegram sends them ------------------------------------------------------------------


def new_id() -> int:
    return next(_ids)


def person(user: int) -> dict[str, Any]:
    return {"id": user, "is_bot": False, "first_name": "Mei", "language_code": "en"}


def text_update(chat: int, text: str, *, user: int | None = None, entities: list[dict[str, Any]] | None = None,
                reply_to_bot: bool = False) -> dict[str, Any]:  # fmt: skip
    user = user or chat
    kind = {"id": chat, "type": "private", "first_name": "Mei"} if chat > 0 else {"id": chat, "type": "supergroup",
                                                                                   "title": "Support"}  # fmt: skip
    message: dict[str, Any] = {"message_id": new_id() % 100000, "date": int(time.time()), "chat": kind,
                               "from": person(user), "text": text}  # fmt: skip
    if entities:
        message["entities"] = entities
    if reply_to_bot:
        message["reply_to_message"] = {"message_id": 7, "date": int(time.time()), "chat": kind, "text": "earlier",
                                       "from": {"id": BOT_ID, "is_bot": True, "first_name": "Ask Hub"}}  # fmt: skip
    return {"update_id": new_id(), "message": message}


def mention(chat: int, question: str, user: int) -> dict[str, Any]:
    handle = f"@{BOT_USERNAME}"
    return text_update(chat, f"{handle} {question}", user=user,
                       entities=[{"type": "mention", "offset": 0, "length": len(handle)}])  # fmt: skip


def tap(chat: int, data: str, message_id: int) -> dict[str, Any]:
    message = {"message_id": message_id, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
               "text": "answer", "from": {"id": BOT_ID, "is_bot": True, "first_name": "Ask Hub"}}  # fmt: skip
    return {"update_id": new_id(), "callback_query": {"id": str(new_id()), "from": person(chat), "chat_instance": "1",
                                                      "data": data, "message": message}}  # fmt: skip


def post(server: HubServer, update: dict[str, Any], *, secret: str | None = SECRET_TOKEN) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return httpx.post(f"{server.url}/telegram/webhook", json=update, headers=headers, timeout=10)


def idle(server: HubServer) -> None:
    server.run(server.hub.jobs.idle(), timeout=30)


def new_chat() -> int:
    return new_id() % 10**9 + 1


# --- tests ---------------------------------------------------------------------------------------------


def test_a_wrong_or_missing_secret_token_is_refused_401_and_never_answered(hub: HubServer, fake: FakeTelegram) -> None:
    chat = new_chat()
    update = text_update(chat, VPN_QUESTION)
    for secret in (None, "guess", ""):
        response = post(hub, update, secret=secret)
        assert response.status_code == 401 and response.json()["error"]["type"] == "unauthorized"
    assert post(hub, update).status_code == 200  # the same update with the token: accepted
    idle(hub)
    assert len(fake.in_chat(chat)) == 1


def test_a_body_that_is_not_an_update_is_a_clear_400(hub: HubServer) -> None:
    response = httpx.post(f"{hub.url}/telegram/webhook", content=b'{"message": {}}', timeout=10,
                          headers={"X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN})  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request"


def test_a_private_question_is_answered_once_in_one_message_edited_within_the_rate_limit(
    hub: HubServer, fake: FakeTelegram
) -> None:
    answered = metric(hub.url, "hub_adapter_events_total", platform="telegram", outcome="answered")
    chat = new_chat()
    assert post(hub, text_update(chat, VPN_QUESTION)).status_code == 200
    idle(hub)
    (answer,) = fake.in_chat(chat)  # the placeholder, edited into the answer: one message
    assert "[gpt-4o" in answer["text"] and "Sources:" in answer["text"]
    buttons = [b["text"] for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["👍", "👎"]
    assert answer["edits"] >= 1 and fake.rate_limited == 0  # never faster than Telegram allows
    assert metric(hub.url, "hub_adapter_events_total", platform="telegram", outcome="answered") == answered + 1
    logs.flush()
    logged = Path(hub.settings.log_file or "").read_text(encoding="utf-8")
    assert BOT_TOKEN not in logged and BOT_TOKEN.split(":")[1] not in logged and SECRET_TOKEN not in logged


def test_in_a_group_only_a_mention_a_command_or_a_reply_to_the_bot_is_answered_as_a_reply(
    hub: HubServer, fake: FakeTelegram
) -> None:
    group, user = -(new_id() % 10**9) - 1, new_chat()
    chatter = text_update(group, "lunch at noon?", user=user)
    asked = mention(group, VPN_QUESTION, user)
    command = text_update(group, "/ask How do I claim travel expenses?", user=user,
                          entities=[{"type": "bot_command", "offset": 0, "length": 4}])  # fmt: skip
    other_bot = text_update(group, "/ask@some_other_bot hi", user=user,
                            entities=[{"type": "bot_command", "offset": 0, "length": 19}])  # fmt: skip
    follow_up = text_update(group, "and on a phone?", user=user, reply_to_bot=True)
    for update in (chatter, asked, command, other_bot, follow_up):
        assert post(hub, update).status_code == 200
    idle(hub)
    replies = fake.in_chat(group)
    assert sorted(m["reply_to"] for m in replies) == sorted(
        u["message"]["message_id"] for u in (asked, command, follow_up)
    )
    assert all("@askhub_test_bot" not in m["text"] for m in replies)


def test_a_redelivered_update_is_answered_once(hub: HubServer, fake: FakeTelegram) -> None:
    chat = new_chat()
    update = text_update(chat, VPN_QUESTION)
    assert post(hub, update).status_code == 200
    assert post(hub, update).status_code == 200
    idle(hub)
    assert post(hub, update).status_code == 200
    idle(hub)
    assert len(fake.in_chat(chat)) == 1


def test_a_thumbs_down_is_recorded_and_a_photo_gets_a_note(hub: HubServer, fake: FakeTelegram) -> None:
    chat = new_chat()
    assert post(hub, text_update(chat, VPN_QUESTION)).status_code == 200
    idle(hub)
    (answer,) = fake.in_chat(chat)
    down = next(b for row in answer["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "👎")
    before = metric(hub.url, "hub_feedback_total", platform="telegram", rating="down")
    assert post(hub, tap(chat, down["callback_data"], answer["message_id"])).status_code == 200
    idle(hub)
    assert metric(hub.url, "hub_feedback_total", platform="telegram", rating="down") == before + 1
    assert fake.toasts[-1]["text"] == "Thanks for the feedback!"
    photo = text_update(chat, "x")
    del photo["message"]["text"]
    photo["message"]["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
    assert post(hub, photo).status_code == 200
    idle(hub)
    assert "text" in fake.texts(chat)[-1] and len(fake.in_chat(chat)) == 2


def test_a_long_answer_is_split_at_4096() -> None:
    from adapters.telegram import render
    from core.schema import AskResult, Source, Usage

    long = " ".join(f"Sentence number {n} explains one more step of the expense claim." for n in range(400))
    result = AskResult("How do I claim travel expenses?", long, [Source("d#0", "Travel policy", "t", 1.0)],
                       "extractive", False, Usage(0, 0, 0), "abc123")  # fmt: skip
    outs = render.answer_messages(result)
    assert len(outs) >= 2 and all(len(o.text) <= render.TEXT_LIMIT for o in outs)
    assert outs[-1].markup is not None and all(o.markup is None for o in outs[:-1])
    assert "[1] Travel policy" in outs[-1].text


def test_start_is_greeted_and_an_edit_is_not_answered(hub: HubServer, fake: FakeTelegram) -> None:
    chat = new_chat()
    start = text_update(chat, "/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    edited = text_update(chat, VPN_QUESTION)
    edited["edited_message"] = edited.pop("message")
    for update in (start, edited):
        assert post(hub, update).status_code == 200
    idle(hub)
    (greeting,) = fake.texts(chat)
    assert f"@{BOT_USERNAME}" in greeting and "/ask" in greeting
