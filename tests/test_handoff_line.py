"""LINE -> Slack -> LINE with the real line-bot-sdk and slack-bolt against the fakes, on memory and Redis.

A LINE customer asks for a person; the agents' channel gets one message with Take / Resolve; the
customer's messages go into its thread and the agent's replies come back by push; the bot says
nothing (the fake upstream counts every model call) until the handoff is resolved by the button
or by the idle timeout (the service's clock is moved, nothing sleeps); then the bot answers again.
Redeliveries in both directions are answered once; bot messages and edits are never relayed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubServer, logged_text, make_settings, metric, write_yaml
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_line_adapter import SECRET as LINE_SECRET
from tests.test_line_adapter import TOKEN, event, new_user, source, text_event
from tests.test_line_adapter import post as line_post
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import TEAM, callback, send_event, send_form
from tests.test_walls_platforms import wait_until

AGENTS, AGENT = "C0AGENTS", "U0AGENT"


@dataclass
class Desk:
    hub: HubServer
    slack: FakeSlack
    line: FakeLineAPI
    model: FakeOpenAI


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"handoff-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    config = write_yaml(tmp / "hub.yaml", {"line": {"tenant": "cs"}, "handoff": {"slack_channel": AGENTS}})
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as model,
        FakeSlack() as slack,
        FakeLineAPI(access_token=TOKEN) as line,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url, LINE_CHANNEL_SECRET=LINE_SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_URL=line.url, **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            hub.hub.handoff.clock = Clock()
            yield Desk(hub, slack, line, model)


def idle(desk: Desk) -> None:
    """Every accepted event of both platforms answered (an event to wait for, not a sleep)."""
    desk.hub.run(desk.hub.hub.jobs.idle(), timeout=20)


def say(desk: Desk, user: str, text: str, **kw: Any) -> dict[str, Any]:
    sent = text_event(desk.line, text, source(user), **kw)
    assert line_post(desk.hub, [sent]).status_code == 200
    return sent


def pushed_to(desk: Desk, user: str) -> list[str]:
    return [m["text"] for d in desk.line.deliveries() if d.to == user and d.via == "push" for m in d.messages]


def replied(desk: Desk, sent: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for d in desk.line.deliveries() if d.to == sent["replyToken"] for m in d.messages]


def opening(desk: Desk, seen: int) -> Any:
    def found() -> Any:
        return [c for c in desk.slack.calls[seen:] if c.method == "chat.postMessage" and c.get("channel") == AGENTS
                and not c.get("thread_ts")]  # fmt: skip

    (posted,) = wait_until(found)
    ts = max(ts for ts, m in desk.slack.messages.items() if desk.slack.channel_of.get(ts) == AGENTS
             and not m.get("thread_ts"))  # fmt: skip
    return posted, ts


def in_thread(desk: Desk, ts: str) -> list[str]:
    return [m["text"] for m in desk.slack.messages.values() if m.get("thread_ts") == ts]


def agent_reply(thread_ts: str, text: str, *, ts: str | None = None, **extra: Any) -> dict[str, Any]:
    ts = ts or f"{time.time():.6f}"
    event = {"type": "message", "user": AGENT, "text": text, "ts": ts, "thread_ts": thread_ts, "channel": AGENTS,
             "event_ts": ts, "channel_type": "channel", "team": TEAM, **extra}  # fmt: skip
    return callback(event)


def click(desk: Desk, action_id: str, ts: str, user: str = AGENT) -> None:
    payload = {"type": "block_actions", "user": {"id": user, "team_id": TEAM}, "api_app_id": "A0001",
               "container": {"type": "message", "message_ts": ts, "channel_id": AGENTS},
               "trigger_id": uuid.uuid4().hex, "team": {"id": TEAM}, "channel": {"id": AGENTS},
               "message": {"type": "message", "ts": ts}, "response_url": desk.slack.response_url("h"),
               "actions": [{"action_id": action_id, "block_id": "askhub_handoff_actions", "value": "x",
                            "type": "button", "action_ts": f"{time.time():.6f}"}]}  # fmt: skip
    assert send_form(desk.hub, {"payload": json.dumps(payload)}).status_code == 200


def status_text(desk: Desk, ts: str) -> str:
    return json.dumps(desk.slack.messages[ts]["blocks"], ensure_ascii=False)


def start(desk: Desk, user: str, text: str = "我想找真人客服") -> tuple[dict[str, Any], str]:
    seen = len(desk.slack.calls)
    sent = say(desk, user, text)
    _, ts = opening(desk, seen)
    wait_until(lambda: replied(desk, sent))
    idle(desk)
    return sent, ts


def test_line_customer_to_slack_and_back_resolved_by_the_button(desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    user = new_user()
    asked = say(desk, user, "How do I set up the VPN?")  # the bot answers as usual
    wait_until(lambda: replied(desk, asked))
    idle(desk)
    before = len(desk.model.calls)
    started_before = metric(desk.hub.url, "hub_handoffs_total", platform="line", outcome="started")

    trigger, ts = start(desk, user, "我想找真人客服，電話 0912-345-678")
    (notice,) = replied(desk, trigger)
    assert "真人客服" in notice  # told in Chinese, by reply
    blocks = status_text(desk, ts)
    assert "handoff_resolve" in blocks and "handoff_take" in blocks and "LINE" in blocks and "cs" in blocks
    assert "VPN" in blocks  # the conversation so far
    assert "0912" not in blocks and "[PHONE]" in blocks  # personal data redacted (the default)
    assert "*Summary*" in blocks  # a model is configured: an LLM summary (charged to the tenant)
    summary_call = (desk.model.calls[-1].json or {})["messages"]
    assert "summarise" in summary_call[0]["content"] and "0912" not in json.dumps(summary_call, ensure_ascii=False)
    assert metric(desk.hub.url, "hub_handoffs_total", platform="line", outcome="started") == started_before + 1
    after_start = len(desk.model.calls)  # the summary may have used the model once

    # Customer -> agents: each message once, in the thread; no model call.
    order = say(desk, user, "my order is 123")
    wait_until(lambda: any("my order is 123" in t for t in in_thread(desk, ts)))
    assert line_post(desk.hub, [order]).status_code == 200  # LINE redelivers it
    sticker = event("message", source(user), token=desk.line.issue_token(),
                    message={"type": "sticker", "id": "1", "packageId": "1", "stickerId": "1",
                             "stickerResourceType": "STATIC", "quoteToken": "q"})  # fmt: skip
    assert line_post(desk.hub, [sticker]).status_code == 200
    wait_until(lambda: any("[sticker]" in t for t in in_thread(desk, ts)))
    idle(desk)
    assert [t for t in in_thread(desk, ts) if "my order" in t] == ["*Customer:* my order is 123"]
    assert not replied(desk, order) and not replied(desk, sticker)  # the bot stays silent
    assert len(desk.model.calls) == after_start

    # Agent -> customer: by push with a retry key; Slack's retry and the app_mention twin relay once.
    reply = agent_reply(ts, "您好，我是客服小美，馬上幫您查")
    assert send_event(desk.hub, reply).status_code == 200
    wait_until(lambda: pushed_to(desk, user))
    assert send_event(desk.hub, reply, retry=1).status_code == 200
    twin = callback({**reply["event"], "type": "app_mention"})
    assert send_event(desk.hub, twin).status_code == 200
    # The bot's own message in the thread and an agent's edit are never relayed.
    bot_line = agent_reply(ts, "*Customer:* my order is 123", bot_id="BBOT", user="UBOT")
    edit = agent_reply(ts, "", subtype="message_changed", message={"text": "edited"})
    assert send_event(desk.hub, bot_line).status_code == 200
    assert send_event(desk.hub, edit).status_code == 200
    idle(desk)
    assert pushed_to(desk, user) == ["您好，我是客服小美，馬上幫您查"]
    (push,) = [c for c in desk.line.pushes() if c.json["to"] == user]
    assert uuid.UUID(push.headers["x-line-retry-key"])
    assert len(desk.model.calls) == after_start

    # Take, then Resolve: the message says who and how long; the customer is told; the bot is back.
    click(desk, "handoff_take", ts)
    wait_until(lambda: f"Taken by <@{AGENT}>" in status_text(desk, ts))
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))
    assert "handoff_resolve" not in status_text(desk, ts) and " after " in status_text(desk, ts)
    wait_until(lambda: len(pushed_to(desk, user)) == 2)
    assert "結束" in pushed_to(desk, user)[1]
    again = say(desk, user, "How do I set up the VPN?")
    wait_until(lambda: replied(desk, again))
    idle(desk)
    assert len(desk.model.calls) > after_start  # the model answers again
    assert before <= after_start

    logged = logged_text(caplog.records)
    assert "0912" not in logged and user not in logged and "客服小美" not in logged
    audits = [r.__dict__.get("event") for r in caplog.records if r.name == "askhub.audit"]
    assert {"handoff_started", "handoff_taken", "handoff_ended"} <= set(audits)


def test_an_english_customer_and_the_idle_timeout(desk: Desk) -> None:
    user = new_user()
    trigger, ts = start(desk, user, "Can I talk to a person please?")
    (notice,) = replied(desk, trigger)
    assert "person" in notice
    closed = desk.hub.run(desk.hub.hub.handoff.close_idle())
    assert closed == 0  # not quiet long enough
    desk.hub.hub.handoff.clock.offset += 1801  # type: ignore[attr-defined]
    try:
        assert desk.hub.run(desk.hub.hub.handoff.close_idle()) == 1
    finally:
        desk.hub.hub.handoff.clock.offset = 0  # type: ignore[attr-defined]
    wait_until(lambda: pushed_to(desk, user))
    assert "quiet" in pushed_to(desk, user)[0]
    assert "Closed after a quiet spell" in status_text(desk, ts)
    # A late agent reply is not delivered to a closed handoff; the bot answers the customer again.
    assert send_event(desk.hub, agent_reply(ts, "sorry, still there?")).status_code == 200
    asked = say(desk, user, "How do I set up the VPN?")
    wait_until(lambda: replied(desk, asked))
    idle(desk)
    assert len(pushed_to(desk, user)) == 1


def test_bot_messages_and_edits_in_a_handoff_thread_are_not_relayed(desk: Desk) -> None:
    user = new_user()
    _, ts = start(desk, user, "human please")
    for sent in (
        agent_reply(ts, "bot says", bot_id="BBOT"),
        agent_reply(ts, "bot says", user="UBOT"),
        agent_reply(ts, "", subtype="message_changed", message={"text": "x"}),
        agent_reply(ts, "joined", subtype="channel_join"),
        agent_reply(ts, "deleted", subtype="message_deleted"),
    ):
        assert send_event(desk.hub, sent).status_code == 200
    assert send_event(desk.hub, agent_reply(ts, "a person")).status_code == 200
    wait_until(lambda: pushed_to(desk, user))
    idle(desk)
    assert pushed_to(desk, user) == ["a person"]
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))


def test_a_resolved_handoff_can_be_saved_as_a_verified_answer(desk: Desk) -> None:
    user = new_user()
    asked = say(desk, user, "退貨的運費誰付?")
    wait_until(lambda: replied(desk, asked))
    idle(desk)
    _, ts = start(desk, user, "我要找真人")
    assert send_event(desk.hub, agent_reply(ts, "退貨運費由本公司負擔，請於七天內寄回。")).status_code == 200
    wait_until(lambda: pushed_to(desk, user))
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "handoff_save_verified" in status_text(desk, ts))

    seen = len(desk.slack.calls)
    click(desk, "handoff_save_verified", ts)
    (opened,) = wait_until(lambda: desk.slack.calls_to("views.open")[-1:] if len(desk.slack.calls) > seen else [])
    view = opened["view"] if isinstance(opened["view"], dict) else json.loads(opened["view"])
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
    assert initial["question"] == "退貨的運費誰付?"  # the question before "我要找真人"
    assert initial["answer"] == "退貨運費由本公司負擔，請於七天內寄回。"
    submission = {
        "type": "view_submission", "team": {"id": TEAM}, "user": {"id": AGENT, "name": "mei"},
        "api_app_id": "A0001", "trigger_id": uuid.uuid4().hex,
        "view": {**view, "id": "V0SAVE1", "hash": "h1", "state": {"values": {
            "question": {"value": {"type": "plain_text_input", "value": "退貨運費由誰負擔?"}},
            "answer": {"value": {"type": "plain_text_input", "value": initial["answer"]}},
            "collection": {"value": {"type": "static_select", "selected_option": {"value": "default"}}},
        }}},
    }  # fmt: skip
    assert send_form(desk.hub, {"payload": json.dumps(submission)}).status_code == 200
    assert send_form(desk.hub, {"payload": json.dumps(submission)}).status_code == 200  # a double submit
    wait_until(lambda: any("Saved as a verified answer" in t for t in in_thread(desk, ts)))
    idle(desk)
    saved = [v for v in desk.hub.run(desk.hub.hub.verified.list()) if v.question == "退貨運費由誰負擔?"]
    assert len(saved) == 1 and saved[0].verified_by == "mei" and saved[0].collection == "default"


def test_a_thumbs_down_offers_a_person_and_the_tap_starts_a_handoff(desk: Desk) -> None:
    user = new_user()
    asked = say(desk, user, "How do I set up the VPN?")
    wait_until(lambda: replied(desk, asked))
    idle(desk)
    [answered] = [d for d in desk.line.deliveries() if d.to == asked["replyToken"]]
    buttons = answered.messages[-1]["quickReply"]["items"]
    down = next(b["action"] for b in buttons if b["action"]["label"] == "👎")
    vote = event("postback", source(user), token=desk.line.issue_token(), postback={"data": down["data"]})
    assert line_post(desk.hub, [vote]).status_code == 200
    wait_until(lambda: replied(desk, vote))
    [thanks] = [d for d in desk.line.deliveries() if d.to == vote["replyToken"]]
    [offer] = [i["action"] for i in thanks.messages[-1]["quickReply"]["items"]]
    assert offer["type"] == "message" and offer["label"] == "Talk to a person"
    # The tap sends the trigger as the customer's own message: the handoff starts like any other.
    calls = len(desk.model.calls)
    _, ts = start(desk, user, offer["text"])
    asked_model = [json.dumps(c.json, ensure_ascii=False) for c in desk.model.calls[calls:]]
    assert asked_model and all("summarise" in c for c in asked_model)  # the agents' summary, no answer
    desk.hub.run(desk.hub.hub.handoff.resolve(AGENTS, ts, AGENT))


@pytest.mark.parametrize("desk", ["memory"], indirect=True)
def test_a_relay_that_fails_while_slack_is_down_is_relayed_once_it_is_back(desk: Desk) -> None:
    """The in-memory queue runs a failed relay again after a wait (Redis redelivers it; see
    tests/test_handoff_processes.py): a customer's message is not lost to one Slack 500."""
    user = new_user()
    _, ts = start(desk, user, "human please")
    idle(desk)
    text = "parcel 31337 is missing"
    desk.slack.fail("chat.postMessage", "internal_error", times=1, status=500)
    say(desk, user, text)
    wait_until(lambda: f"*Customer:* {text}" in in_thread(desk, ts))
    idle(desk)
    tries = [c for c in desk.slack.calls if c.method == "chat.postMessage" and text in str(c.get("text"))]
    assert len(tries) == 2  # the one Slack refused, and the retry
    assert in_thread(desk, ts).count(f"*Customer:* {text}") == 1
