"""Telegram -> Slack -> Telegram: a private chat handed to the agents' Slack desk and back.

The real python-telegram-bot and slack-bolt against the fakes, on memory and Redis. The customer
asks for a person; the agents' channel gets one message; the customer's messages go into its
thread once (a redelivery too) and the agent's reply comes back once (Slack's retry too); the bot
is silent until Resolve, then answers again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.waiting import wait_until
from tests.test_handoff_line import AGENTS, agent_reply, click, in_thread, status_text
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import send_event
from tests.test_telegram_adapter import new_chat, post, tap, telegram_env, text_update


@dataclass
class Desk:
    hub: HubServer
    slack: FakeSlack
    tg: FakeTelegram
    model: FakeOpenAI


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"tg-handoff-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    config = write_yaml(tmp / "hub.yaml", {"telegram": {"tenant": "cs"}, "handoff": {"slack_channel": AGENTS}})
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as model,
        FakeSlack() as slack,
        FakeTelegram() as tg,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url, **telegram_env(tg), **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield Desk(hub, slack, tg, model)


def idle(desk: Desk) -> None:
    desk.hub.run(desk.hub.hub.jobs.idle(), timeout=30)


def test_a_telegram_customer_to_the_slack_desk_and_back_once_each_way(desk: Desk) -> None:
    chat = new_chat()
    assert post(desk.hub, text_update(chat, "How do I set up the VPN?")).status_code == 200
    idle(desk)
    assert len(desk.tg.in_chat(chat)) == 1
    seen = set(desk.slack.messages)

    assert post(desk.hub, text_update(chat, "Can I talk to a person please?")).status_code == 200
    (ts,) = wait_until(lambda: [t for t, m in desk.slack.messages.items() if t not in seen
                                and desk.slack.channel_of.get(t) == AGENTS and not m.get("thread_ts")])  # fmt: skip
    idle(desk)
    assert "person" in desk.tg.texts(chat)[1] and "Telegram" in status_text(desk, ts)
    after_start = len(desk.model.calls)

    order = text_update(chat, "my order is 123")
    assert post(desk.hub, order).status_code == 200
    assert post(desk.hub, order).status_code == 200  # redelivered
    idle(desk)
    assert [t for t in in_thread(desk, ts) if "my order" in t] == ["*Customer:* my order is 123"]
    assert len(desk.tg.in_chat(chat)) == 2 and len(desk.model.calls) == after_start

    reply = agent_reply(ts, "Hello, this is Mei from support")
    assert send_event(desk.hub, reply).status_code == 200
    wait_until(lambda: len(desk.tg.in_chat(chat)) == 3)
    assert send_event(desk.hub, reply, retry=1).status_code == 200
    idle(desk)
    assert desk.tg.texts(chat)[2:] == ["Hello, this is Mei from support"]

    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))
    wait_until(lambda: len(desk.tg.in_chat(chat)) == 4)
    assert post(desk.hub, text_update(chat, "How do I set up the VPN?")).status_code == 200
    idle(desk)
    assert len(desk.tg.in_chat(chat)) == 5 and len(desk.model.calls) > after_start


def test_after_a_thumbs_down_the_talk_to_a_person_button_hands_off(desk: Desk) -> None:
    chat = new_chat()
    assert post(desk.hub, text_update(chat, "How do I set up the VPN?")).status_code == 200
    idle(desk)
    (answer,) = desk.tg.in_chat(chat)
    buttons = {b["text"]: b["callback_data"] for row in answer["reply_markup"]["inline_keyboard"] for b in row}
    assert set(buttons) == {"👍", "👎", "Talk to a person"}  # a private chat the desk covers
    assert post(desk.hub, tap(chat, buttons["👎"], answer["message_id"])).status_code == 200
    idle(desk)
    offer = desk.tg.in_chat(chat)[1]
    (person,) = [b["callback_data"] for row in offer["reply_markup"]["inline_keyboard"] for b in row]
    seen = set(desk.slack.messages)
    assert post(desk.hub, tap(chat, person, offer["message_id"])).status_code == 200
    (ts,) = wait_until(lambda: [t for t, m in desk.slack.messages.items() if t not in seen
                                and desk.slack.channel_of.get(t) == AGENTS and not m.get("thread_ts")])  # fmt: skip
    idle(desk)
    assert "Telegram" in status_text(desk, ts) and len(desk.tg.in_chat(chat)) == 3  # and the customer is told
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))
