"""WhatsApp -> Slack -> WhatsApp: a WhatsApp customer handed to the agents' Slack desk and back.

The adapter's httpx client and slack-bolt against the fakes, on memory and Redis. The customer
asks for a person; the agents' channel gets one message; the customer's messages go into its
thread once (a redelivery too) and the agent's replies come back once (Slack's retry too); the
bot says nothing (the fake upstream counts every model call) until Resolve; then it answers again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.fakes.whatsapp_webhook import button, message, new_user, payload, post, whatsapp_env
from tests.test_handoff_line import AGENTS, agent_reply, click, in_thread, status_text
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import send_event
from tests.test_walls_platforms import wait_until


@dataclass
class Desk:
    hub: HubServer
    slack: FakeSlack
    wa: FakeWhatsApp
    model: FakeOpenAI


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"wa-handoff-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    config = write_yaml(
        tmp / "hub.yaml",
        {"whatsapp": {"tenant": "cs", "window_template": "askhub_reopen"}, "handoff": {"slack_channel": AGENTS}},
    )
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as model,
        FakeSlack() as slack,
        FakeWhatsApp() as wa,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url, **whatsapp_env(wa), **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield Desk(hub, slack, wa, model)


def idle(desk: Desk) -> None:
    desk.hub.run(desk.hub.hub.jobs.idle(), timeout=20)


def say(desk: Desk, user: str, text: str) -> dict[str, object]:
    sent = message(user, text)
    assert post(desk.hub, payload(sent)).status_code == 200
    return sent


def opening_ts(desk: Desk, seen: int) -> str:
    def found() -> list[str]:
        return [ts for ts, m in desk.slack.messages.items() if desk.slack.channel_of.get(ts) == AGENTS
                and not m.get("thread_ts") and ts not in seen_ts]  # fmt: skip

    seen_ts = {ts for ts in list(desk.slack.messages)[:seen]}
    (ts,) = wait_until(found)
    return ts


def test_a_whatsapp_customer_to_the_slack_desk_and_back_once_each_way(desk: Desk) -> None:
    user = new_user()
    say(desk, user, "How do I set up the VPN?")  # the bot answers as usual
    wait_until(lambda: desk.wa.to(user))
    idle(desk)
    seen = len(desk.slack.messages)

    say(desk, user, "I want to talk to a person")
    ts = opening_ts(desk, seen)
    wait_until(lambda: len(desk.wa.to(user)) == 2)
    idle(desk)
    assert "person" in desk.wa.texts_to(user)[1]  # told, in English
    blocks = status_text(desk, ts)
    assert "WhatsApp" in blocks and "cs" in blocks and "handoff_resolve" in blocks
    after_start = len(desk.model.calls)

    # Customer -> agents: once, in the thread, a redelivery too; a photo as a note; the bot silent.
    order = message(user, "my order is 123")
    assert post(desk.hub, payload(order)).status_code == 200
    wait_until(lambda: any("my order is 123" in t for t in in_thread(desk, ts)))
    assert post(desk.hub, payload(order)).status_code == 200
    photo = message(user, kind="image", image={"id": "1", "mime_type": "image/jpeg"})
    assert post(desk.hub, payload(photo)).status_code == 200
    wait_until(lambda: any("[image]" in t for t in in_thread(desk, ts)))
    idle(desk)
    assert [t for t in in_thread(desk, ts) if "my order" in t] == ["*Customer:* my order is 123"]
    assert len(desk.wa.to(user)) == 2 and len(desk.model.calls) == after_start

    # Agent -> customer: once, Slack's retry too.
    reply = agent_reply(ts, "Hello, this is Mei from support; checking now")
    assert send_event(desk.hub, reply).status_code == 200
    wait_until(lambda: len(desk.wa.to(user)) == 3)
    assert send_event(desk.hub, reply, retry=1).status_code == 200
    idle(desk)
    assert desk.wa.texts_to(user)[2:] == ["Hello, this is Mei from support; checking now"]

    # Resolve: the customer is told once; the bot answers again.
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))
    wait_until(lambda: len(desk.wa.to(user)) == 4)
    again = say(desk, user, "How do I set up the VPN?")
    wait_until(lambda: len(desk.wa.to(user)) == 5)
    idle(desk)
    assert len(desk.model.calls) > after_start
    assert desk.wa.to(user)[4].body["context"] == {"message_id": again["id"]}
    assert len(desk.wa.to(user)) == 5


def test_the_talk_to_a_person_button_after_a_thumbs_down_hands_off(desk: Desk) -> None:
    user = new_user()
    say(desk, user, "How do I set up the VPN?")
    (answer,) = wait_until(lambda: desk.wa.to(user))
    idle(desk)
    person = next(b for b in answer.buttons if b["title"] == "Talk to a person")  # handoff covers WhatsApp
    down = next(b for b in answer.buttons if b["title"] == "👎")
    assert post(desk.hub, payload(button(user, down["id"], "👎"))).status_code == 200
    (_, thanks) = wait_until(lambda: desk.wa.to(user)[1:] and desk.wa.to(user))
    assert [b["title"] for b in thanks.buttons] == ["Talk to a person"]
    seen = len(desk.slack.messages)
    assert post(desk.hub, payload(button(user, person["id"], "Talk to a person"))).status_code == 200
    ts = opening_ts(desk, seen)
    assert "WhatsApp" in status_text(desk, ts)
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))


def test_an_agents_reply_after_the_window_closed_goes_as_the_template(desk: Desk) -> None:
    user = new_user()
    seen = len(desk.slack.messages)
    say(desk, user, "talk to a person")
    ts = opening_ts(desk, seen)
    wait_until(lambda: desk.wa.to(user))
    idle(desk)
    desk.wa.close_window(user)  # the customer went quiet for a day
    assert send_event(desk.hub, agent_reply(ts, "Sorry for the wait: your refund is on its way")).status_code == 200
    wait_until(lambda: len(desk.wa.to(user)) == 2)
    idle(desk)
    assert desk.wa.texts_to(user)[1] == "template:askhub_reopen"  # not dropped: the customer is told to reply
    assert len(desk.wa.refused) == 1  # WhatsApp refused the text (131047); the template went instead
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))
