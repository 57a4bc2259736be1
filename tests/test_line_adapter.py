"""The LINE adapter: the real line-bot-sdk v3 async client against a fake LINE Messaging API.

Webhooks are signed as LINE signs them (base64 HMAC-SHA256 of the raw body with the channel
secret) and posted to the real hub on loopback; the fake records every API call the SDK makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.line.api import LOADING_SECONDS, retry_key
from adapters.line.translate import addressed_text
from core.messages import polite
from tests.conftest import HubServer, make_settings, metric
from tests.fakes.line_api import BOT_USER_ID, FakeLineAPI, utf16_units
from tests.fakes.openai_upstream import FakeOpenAI

SECRET = "line-channel-secret-for-tests"
TOKEN = "line-channel-access-token-for-tests"
VPN_QUESTION = "How do I connect to the VPN with FortiClient?"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def line_api() -> Iterator[FakeLineAPI]:
    with FakeLineAPI(access_token=TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def offline_hub(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, line_api: FakeLineAPI
) -> Iterator[HubServer]:
    """The hub answering offline (extractive model) from the sample knowledge base."""
    tmp = tmp_path_factory.mktemp("line-offline")
    settings = make_settings(
        tmp,
        INDEX_DIR=str(sample_index),
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_URL=line_api.url,
    )
    with HubServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def model_hub(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, line_api: FakeLineAPI, openai: FakeOpenAI
) -> Iterator[HubServer]:
    """The hub with an OpenAI-compatible upstream (the fake) and a 1-second reply window."""
    tmp = tmp_path_factory.mktemp("line-model")
    config = tmp / "hub.yaml"
    config.write_text("line:\n  reply_within_sec: 1\n", encoding="utf-8")
    settings = make_settings(
        tmp,
        INDEX_DIR=str(sample_index),
        HUB_CONFIG=str(config),
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=openai.base_url,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_URL=line_api.url,
    )
    with HubServer(settings) as server:
        yield server


@pytest.fixture
def line(line_api: FakeLineAPI) -> FakeLineAPI:
    line_api.reset()
    return line_api


@pytest.fixture
def hub(offline_hub: HubServer, line: FakeLineAPI) -> HubServer:
    return offline_hub


# --- helpers: events as LINE sends them --------------------------------------------------------------


def new_user() -> str:
    return "U" + uuid.uuid4().hex


def new_event_id() -> str:
    return "01" + uuid.uuid4().hex[:24].upper()


def source(user: str, group: str | None = None, room: str | None = None) -> dict[str, Any]:
    if group:
        return {"type": "group", "groupId": group, "userId": user}
    if room:
        return {"type": "room", "roomId": room, "userId": user}
    return {"type": "user", "userId": user}


def event(
    kind: str,
    src: dict[str, Any],
    *,
    token: str | None,
    event_id: str | None = None,
    redelivery: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": src,
        "webhookEventId": event_id or new_event_id(),
        "deliveryContext": {"isRedelivery": redelivery},
        **fields,
    }
    if token is not None:
        body["replyToken"] = token
    return body


def text_event(line: FakeLineAPI, text: str, src: dict[str, Any], **kw: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "text",
        "id": str(uuid.uuid4().int)[:18],
        "quoteToken": "q" + uuid.uuid4().hex,
        "text": text,
    }
    if "mention" in kw:
        message["mention"] = kw.pop("mention")
    return event("message", src, token=kw.pop("token", None) or line.issue_token(), message=message, **kw)


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(server: HubServer, events: list[dict[str, Any]], *, signature: str | None = "sign") -> httpx.Response:
    body = json.dumps({"destination": BOT_USER_ID, "events": events}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["X-Line-Signature"] = sign(body) if signature == "sign" else signature
    return httpx.post(f"{server.url}/line/webhook", content=body, headers=headers, timeout=5)


def deliver(server: HubServer, events: list[dict[str, Any]], timeout: float = 15) -> httpx.Response:
    """Post a signed webhook and wait until every job it queued is done."""
    response = post(server, events)
    assert response.status_code == 200, response.text
    server.run(server.hub.jobs.idle(), timeout)
    return response


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages if m["type"] == "text"]


def state(server: HubServer, event_id: str) -> str | None:
    return server.run(server.hub.events.state("line", event_id))


def deliveries_metric(server: HubServer, method: str) -> float:
    return metric(server.url, "hub_line_deliveries_total", method=method)


# --- tests ---------------------------------------------------------------------------------------------


def test_text_message_is_answered_by_reply(hub: HubServer, line: FakeLineAPI) -> None:
    user = new_user()
    replies_before = deliveries_metric(hub, "reply")
    ev = text_event(line, VPN_QUESTION, source(user))

    deliver(hub, [ev])

    [reply] = line.replies()
    assert reply.status == 200
    assert reply.json["replyToken"] == ev["replyToken"]
    assert reply.headers["authorization"] == f"Bearer {TOKEN}"
    messages = reply.json["messages"]
    assert 1 <= len(messages) <= 5
    assert "FortiClient" in texts(messages)[0]
    sources = [m for m in messages if m["type"] == "flex"]
    assert sources and "vpn" in json.dumps(sources[0]["contents"]).lower()
    assert sources[0]["altText"].startswith("Sources: [1]")  # numbered as the answer cites them
    # 👍 / 👎 on the last message, postbacks carrying the request id
    buttons = messages[-1]["quickReply"]["items"]
    assert [b["action"]["label"] for b in buttons] == ["👍", "👎"]
    assert all(b["action"]["type"] == "postback" and "id=" in b["action"]["data"] for b in buttons)
    assert line.pushes() == []
    assert state(hub, ev["webhookEventId"]) == "done"
    assert deliveries_metric(hub, "reply") == replies_before + 1


def test_batch_of_three_events_gets_three_replies(hub: HubServer, line: FakeLineAPI) -> None:
    events = [
        text_event(line, VPN_QUESTION, source(new_user())),
        text_event(line, "特休假有幾天？", source(new_user())),
        text_event(line, "How do I book a meeting room?", source(new_user())),
    ]

    deliver(hub, events)

    replies = line.replies()
    assert len(replies) == 3
    assert all(r.status == 200 for r in replies)
    used = [r.json["replyToken"] for r in replies]
    assert sorted(used) == sorted(e["replyToken"] for e in events)  # each token used, once
    assert len(set(used)) == 3
    assert line.pushes() == []
    assert all(state(hub, e["webhookEventId"]) == "done" for e in events)


def test_bad_or_missing_signature_is_refused_and_nothing_runs(hub: HubServer, line: FakeLineAPI) -> None:
    ev = text_event(line, VPN_QUESTION, source(new_user()))
    bad = post(hub, [ev], signature=sign(b"another body"))
    wrong_secret = post(hub, [ev], signature=base64.b64encode(b"x" * 32).decode())
    missing = post(hub, [ev], signature=None)

    for response in (bad, wrong_secret, missing):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "invalid_request" and "signature" in error["message"].lower()
    hub.run(hub.hub.jobs.idle())
    assert line.calls == []
    assert state(hub, ev["webhookEventId"]) is None  # not even claimed


def test_console_verify_request_is_acknowledged(hub: HubServer, line: FakeLineAPI) -> None:
    response = post(hub, [])  # the "Verify" button of the LINE Developers console

    assert response.status_code == 200
    assert line.calls == []


def test_limits_get_a_short_polite_answer(hub: HubServer, line: FakeLineAPI) -> None:
    user = new_user()  # the per-user limit is 10 questions a minute
    events = [text_event(line, f"{VPN_QUESTION} ({n})", source(user)) for n in range(11)]

    deliver(hub, events)

    replies = line.replies()
    assert len(replies) == 11  # every event answered, none silent
    limited = [r for r in replies if "asking a little fast" in texts(r.json["messages"])[0]]
    assert len(limited) == 1
    [message] = limited[0].json["messages"]  # short: one message, no sources, no buttons
    assert "quickReply" not in message and "Traceback" not in message["text"]


def test_redelivery_of_an_answered_event_is_skipped(hub: HubServer, line: FakeLineAPI) -> None:
    user = new_user()
    first = text_event(line, VPN_QUESTION, source(user))
    deliver(hub, [first])
    assert len(line.deliveries()) == 1
    duplicates = metric(hub.url, "hub_adapter_events_total", platform="line", outcome="duplicate")

    again = dict(first, deliveryContext={"isRedelivery": True}, replyToken=line.issue_token())
    deliver(hub, [again])

    assert len(line.deliveries()) == 1
    assert len(line.replies()) == 1 and line.pushes() == []
    assert metric(hub.url, "hub_adapter_events_total", platform="line", outcome="duplicate") == duplicates + 1


def test_redelivery_of_an_unanswered_event_is_answered(hub: HubServer, line: FakeLineAPI) -> None:
    # LINE is down for the first delivery: reply fails (500, and again when retried), push is
    # refused (monthly limit).
    line.fail("/v2/bot/message/reply", status=500, times=2)
    line.fail("/v2/bot/message/push", status=429)
    first = text_event(line, VPN_QUESTION, source(new_user()))
    deliver(hub, [first])
    assert line.deliveries() == []
    assert state(hub, first["webhookEventId"]) is None  # released: a redelivery should be answered

    again = dict(first, deliveryContext={"isRedelivery": True}, replyToken=line.issue_token())
    deliver(hub, [again])

    [delivery] = line.deliveries()
    assert delivery.via == "reply" and delivery.to == again["replyToken"]
    assert state(hub, first["webhookEventId"]) == "done"


def test_a_reply_whose_answer_was_lost_is_not_said_twice(hub: HubServer, line: FakeLineAPI) -> None:
    # LINE delivers the reply but answers 500: the retry with the same token is refused as used,
    # which proves the first went out, so no push repeats the answer.
    line.fail("/v2/bot/message/reply", status=500, deliver=True)
    ev = text_event(line, VPN_QUESTION, source(new_user()))

    deliver(hub, [ev])

    assert [r.status for r in line.replies()] == [500, 400]
    assert line.pushes() == []
    assert [d.via for d in line.deliveries()] == ["reply"]
    assert state(hub, ev["webhookEventId"]) == "done"


def test_a_reply_that_failed_is_retried_with_its_token(hub: HubServer, line: FakeLineAPI) -> None:
    line.fail("/v2/bot/message/reply", status=502)
    ev = text_event(line, VPN_QUESTION, source(new_user()))

    deliver(hub, [ev])

    assert [r.status for r in line.replies()] == [502, 200]
    assert line.pushes() == [] and [d.via for d in line.deliveries()] == ["reply"]


def test_expired_reply_token_falls_back_to_push(hub: HubServer, line: FakeLineAPI) -> None:
    user = new_user()
    expired_before = deliveries_metric(hub, "expired_token")
    pushes_before = deliveries_metric(hub, "push")
    ev = text_event(line, VPN_QUESTION, source(user))
    line.expire(ev["replyToken"])

    deliver(hub, [ev])

    [reply] = line.replies()
    assert reply.status == 400
    [push] = line.pushes()
    assert push.status == 200 and push.json["to"] == user
    assert push.headers["x-line-retry-key"] == retry_key(ev["webhookEventId"])
    assert "FortiClient" in texts(push.json["messages"])[0]
    assert deliveries_metric(hub, "expired_token") == expired_before + 1
    assert deliveries_metric(hub, "push") == pushes_before + 1


def test_a_retried_push_is_delivered_once(hub: HubServer, line: FakeLineAPI) -> None:
    # The push is accepted but its answer is lost; the retry with the same key gets LINE's 409.
    line.expire_all = True
    line.fail("/v2/bot/message/push", status=500, deliver=True)
    ev = text_event(line, VPN_QUESTION, source(new_user()))

    deliver(hub, [ev])

    pushes = line.pushes()
    assert [p.status for p in pushes] == [500, 409]
    keys = {p.headers["x-line-retry-key"] for p in pushes}
    assert keys == {retry_key(ev["webhookEventId"])}
    assert uuid.UUID(keys.pop())
    assert [d.via for d in line.deliveries()] == ["push"]
    assert state(hub, ev["webhookEventId"]) == "done"


def test_group_message_is_answered_only_when_addressed(hub: HubServer, line: FakeLineAPI) -> None:
    group, user = "C" + uuid.uuid4().hex, new_user()
    plain = text_event(line, VPN_QUESTION, source(user, group=group))
    deliver(hub, [plain])
    assert line.calls == []
    assert state(hub, plain["webhookEventId"]) == "done"  # handled: ignored on purpose

    mention = {"mentionees": [{"index": 0, "length": 8, "type": "user", "userId": BOT_USER_ID, "isSelf": True}]}
    mentioned = text_event(line, "@Ask Hub " + VPN_QUESTION, source(user, group=group), mention=mention)
    other = {"mentionees": [{"index": 0, "length": 6, "type": "user", "userId": new_user(), "isSelf": False}]}
    someone_else = text_event(line, "@Alice " + VPN_QUESTION, source(user, group=group), mention=other)
    prefixed = text_event(line, "/ask 特休假有幾天？", source(user, room="R" + uuid.uuid4().hex))
    deliver(hub, [mentioned, someone_else, prefixed])

    used = {r.json["replyToken"] for r in line.replies()}
    assert used == {mentioned["replyToken"], prefixed["replyToken"]}
    assert line.loading_calls() == []  # the loading animation is for one-to-one chats only


def test_mention_and_prefix_are_cut_from_the_question() -> None:
    from linebot.v3.webhooks import TextMessageContent

    def content(text: str, mentionees: list[dict[str, Any]] | None = None) -> TextMessageContent:
        raw: dict[str, Any] = {"type": "text", "id": "1", "quoteToken": "q", "text": text}
        if mentionees:
            raw["mention"] = {"mentionees": mentionees}
        return TextMessageContent.from_dict(raw)

    prefixes = ["@bot", "/ask"]
    # offsets count UTF-16 units: the emoji before the mention takes two
    me = {"index": 3, "length": 8, "type": "user", "isSelf": True}
    assert addressed_text(content("😀 @Ask Hub 請假規定？", [me]), prefixes, None) == "😀 請假規定？"
    by_id = {"index": 0, "length": 8, "type": "user", "userId": BOT_USER_ID}
    assert addressed_text(content("@Ask Hub hi", [by_id]), prefixes, BOT_USER_ID) == "hi"
    assert addressed_text(content("/ask：VPN 怎麼連？"), prefixes, None) == "VPN 怎麼連？"
    assert addressed_text(content("/asking around"), prefixes, None) is None
    assert addressed_text(content("hello there"), prefixes, None) is None


def test_loading_animation_only_in_one_to_one_chats(hub: HubServer, line: FakeLineAPI) -> None:
    user = new_user()
    mention = {"mentionees": [{"index": 0, "length": 4, "type": "user", "isSelf": True}]}
    one_to_one = text_event(line, VPN_QUESTION, source(user))
    in_group = text_event(
        line, "@bot " + VPN_QUESTION, source(new_user(), group="C" + uuid.uuid4().hex), mention=mention
    )

    deliver(hub, [one_to_one, in_group])

    [loading] = line.loading_calls()
    assert loading.status == 202
    assert loading.json == {"chatId": user, "loadingSeconds": LOADING_SECONDS}
    assert len(line.replies()) == 2
    # shown before the answer went out
    reply_to_user = next(r for r in line.replies() if r.json["replyToken"] == one_to_one["replyToken"])
    assert loading.time <= reply_to_user.time


def test_sticker_gets_the_text_only_reply(hub: HubServer, line: FakeLineAPI) -> None:
    sticker = {"type": "sticker", "id": "1", "quoteToken": "q1", "packageId": "446", "stickerId": "1988",
               "stickerResourceType": "STATIC"}  # fmt: skip
    ev = event("message", source(new_user()), token=line.issue_token(), message=sticker)

    deliver(hub, [ev])

    [reply] = line.replies()
    [text] = texts(reply.json["messages"])
    assert polite("text_only", language="en") in text
    assert polite("text_only", language="zh-TW") in text
    assert line.loading_calls() == [] and line.pushes() == []


def test_follow_gets_a_greeting(hub: HubServer, line: FakeLineAPI) -> None:
    ev = event("follow", source(new_user()), token=line.issue_token(), follow={"isUnblocked": False})

    deliver(hub, [ev])

    [reply] = line.replies()
    [text] = texts(reply.json["messages"])
    assert "Ask Hub" in text and "您好" in text and "/ask" in text


def test_feedback_postback_is_recorded(hub: HubServer, line: FakeLineAPI) -> None:
    user = new_user()
    deliver(hub, [text_event(line, VPN_QUESTION, source(user))])
    buttons = line.replies()[0].json["messages"][-1]["quickReply"]["items"]
    down = next(b["action"] for b in buttons if b["action"]["label"] == "👎")
    request_id = dict(p.split("=") for p in down["data"].split("&"))["id"]

    ev = event("postback", source(user), token=line.issue_token(), postback={"data": down["data"]})
    deliver(hub, [ev])

    thanks = line.replies()[-1]
    assert thanks.json["replyToken"] == ev["replyToken"]
    assert "Thanks" in texts(thanks.json["messages"])[0]
    recent = hub.run(hub.hub.feedback.recent(20))
    [entry] = [f for f in recent if f["request_id"] == request_id]
    assert entry["rating"] == "down" and entry["platform"] == "line"


def test_slow_model_answers_by_push_with_a_retry_key(
    model_hub: HubServer, line: FakeLineAPI, openai: FakeOpenAI
) -> None:
    openai.reset()
    openai.set_behavior(mode="ok", delay=3)  # longer than reply_within_sec (1 s)
    user = new_user()
    ev = text_event(line, "How do I install FortiClient VPN on macOS?", source(user))

    response = post(model_hub, [ev])
    assert response.status_code == 200
    assert line.deliveries() == []  # acknowledged before the model (3 s) answered
    model_hub.run(model_hub.hub.jobs.idle(), 20)

    assert line.replies() == []
    [push] = line.pushes()
    assert push.status == 200 and push.json["to"] == user
    assert push.headers["x-line-retry-key"] == retry_key(ev["webhookEventId"])
    assert uuid.UUID(push.headers["x-line-retry-key"])
    assert texts(push.json["messages"])[0].startswith("[gpt-4o")  # the model's answer
    [loading] = line.loading_calls()
    assert loading.json["chatId"] == user


def test_long_emoji_and_cjk_answer_is_split_for_line(
    model_hub: HubServer, line: FakeLineAPI, openai: FakeOpenAI
) -> None:
    # ~43,000 UTF-16 units: first a run of emoji with no place to cut but between characters
    # (surrogate pairs, skin tones, ZWJ families, flags), then sentences of CJK with emoji.
    run = "😀👍🏽👨‍👩‍👧‍👦🇹🇼" * 400
    sentence = "請假規定👨‍👩‍👧‍👦說明🇹🇼，特休😀依年資計算🎉。"
    answer = run + "\n\n" + "\n\n".join(sentence * 40 for _ in range(30))
    assert utf16_units(answer) > 5 * 5000
    openai.reset()
    openai.set_behavior(mode="ok", reply=answer)
    ev = text_event(line, "How many days of annual leave do I get?", source(new_user()))

    deliver(model_hub, [ev])

    [delivery] = line.deliveries()
    messages = delivery.messages
    assert len(messages) <= 5
    parts = texts(messages)
    assert 2 <= len(parts) <= 4
    for part in parts:
        assert utf16_units(part) <= 5000
        part.encode("utf-16-le")  # strict: no half surrogate pair anywhere
        assert not part.endswith("\u200d") and part[0] != "\u200d"  # no family cut at a joiner
        assert not 0x1F3FB <= ord(part[0]) <= 0x1F3FF  # no skin tone torn from its hand
        flags = len(part) - len(part.lstrip("🇹🇼"))
        assert flags % 2 == 0  # no flag split into its two letters
    assert parts[-1].count("…") == 1 and "web portal" in parts[-1]  # truncated, with the pointer
    shown = "".join(parts[:-1]) + parts[-1].split("…")[0]
    assert "".join(answer.split()).startswith("".join(shown.split()))
    assert messages[-1]["type"] == "flex" and "quickReply" in messages[-1]
