"""LINE -> a Teams desk -> LINE: ``handoff.desk: teams`` with the real line-bot-sdk against the
LINE fake and the Teams adapter against the Bot Framework fake, on memory and Redis.

A LINE customer asks for a person; the agents' Teams channel gets one card with Take / Resolve
(the summary in its reply chain); the customer's messages go into that chain and the agent's
replies there come back to LINE by push, each exactly once (redeliveries too); Take and Resolve
edit the card; the customer is told it ended, and the bot answers again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubServer, logged_text, make_settings, write_yaml
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.teams_api import FakeTeams, TeamsMessage
from tests.test_line_adapter import SECRET as LINE_SECRET
from tests.test_line_adapter import TOKEN, new_user, source, text_event
from tests.test_line_adapter import post as line_post
from tests.test_walls_platforms import wait_until

APP_ID, APP_PASSWORD = "desk-teams-app", "desk-teams-secret"
DESK, STAFF = "19:agents@thread.tacv2", "aad-company"


@dataclass
class Desk:
    hub: HubServer
    teams: FakeTeams
    line: FakeLineAPI
    model: FakeOpenAI


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"teams-desk-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with (
        FakeOpenAI() as model,
        FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD) as teams,
        FakeLineAPI(access_token=TOKEN) as line,
    ):
        config = write_yaml(tmp / "hub.yaml", {
            "line": {"tenant": "cs"},
            "teams": {"tenants": {STAFF: "default"}, "service_url": teams.service_url},
            "handoff": {"desk": "teams", "teams_channel": DESK},
        })  # fmt: skip
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", TEAMS_APP_ID=APP_ID,
            TEAMS_APP_PASSWORD=APP_PASSWORD, TEAMS_OPENID_URL=teams.openid_url, TEAMS_TOKEN_URL=teams.token_url,
            LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_URL=line.url, **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield Desk(hub, teams, line, model)


def idle(desk: Desk) -> None:
    desk.hub.run(desk.hub.hub.jobs.idle(), timeout=20)


def say(desk: Desk, user: str, text: str) -> dict[str, Any]:
    sent = text_event(desk.line, text, source(user))
    assert line_post(desk.hub, [sent]).status_code == 200
    return sent


def pushed_to(desk: Desk, user: str) -> list[str]:
    return [m["text"] for d in desk.line.deliveries() if d.to == user and d.via == "push" for m in d.messages]


def replied(desk: Desk, sent: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for d in desk.line.deliveries() if d.to == sent["replyToken"] for m in d.messages]


def to_teams(desk: Desk, body: dict[str, Any]) -> None:
    response = desk.teams.deliver(desk.hub.url, body)
    assert response.status_code == 200, response.text


def card_of(message: TeamsMessage) -> str:
    return message.cards()


def test_a_line_customer_handed_to_the_teams_desk_and_back(desk: Desk) -> None:
    desk.teams.reset()
    user = new_user()
    asked = say(desk, user, "How do I set up the VPN?")  # the bot answers as usual
    wait_until(lambda: replied(desk, asked))
    idle(desk)

    trigger = say(desk, user, "我想找真人客服")
    (card,) = wait_until(lambda: desk.teams.in_conversation(DESK))  # one card in the channel
    chain = f"{DESK};messageid={card.id}"
    wait_until(lambda: replied(desk, trigger))
    assert "真人客服" in replied(desk, trigger)[0]
    shown = card_of(card)
    assert '"kind": "take"' in shown and '"kind": "resolve"' in shown and "LINE" in shown and "cs" in shown
    (summary,) = wait_until(lambda: desk.teams.in_conversation(chain))
    assert "VPN" in summary.text  # the conversation so far, in the card's reply chain
    after_start = len(desk.model.calls)

    # Customer -> agents: once in the chain, also when LINE redelivers; the bot stays silent.
    order = say(desk, user, "my order is 123")
    wait_until(lambda: any("my order is 123" in m.text for m in desk.teams.in_conversation(chain)))
    assert line_post(desk.hub, [order]).status_code == 200
    idle(desk)
    assert [m.text for m in desk.teams.in_conversation(chain) if "my order" in m.text] == [
        "**Customer:** my order is 123"
    ]
    assert not replied(desk, order)

    # Agent -> customer: the reply in the card's chain is pushed once, redelivered or not.
    reply = desk.teams.activity("您好，我是客服小美，馬上幫您查", conversation=chain, kind="channel", channel=DESK,
                                tenant=STAFF, user="29:agent", aad="aad-agent", mention=True)  # fmt: skip
    to_teams(desk, reply)
    wait_until(lambda: pushed_to(desk, user))
    to_teams(desk, reply)
    idle(desk)
    assert pushed_to(desk, user) == ["您好，我是客服小美，馬上幫您查"]
    assert len(desk.model.calls) == after_start

    # Take, then Resolve: the card is edited; the customer is told; the bot is back.
    def press(kind: str) -> None:
        value = {"askhub": "askhub-desk", "kind": kind, "h": "x"}
        to_teams(desk, desk.teams.activity("", conversation=chain, kind="channel", channel=DESK, tenant=STAFF,
                                           user="29:agent", aad="aad-agent", value=value, reply_to=card.id))  # fmt: skip

    press("take")
    wait_until(lambda: "Taken by" in card_of(desk.teams.messages[card.id]))
    press("resolve")
    wait_until(lambda: "Resolved by" in card_of(desk.teams.messages[card.id]))
    assert '"kind": "take"' not in card_of(desk.teams.messages[card.id])
    wait_until(lambda: len(pushed_to(desk, user)) == 2)
    assert "結束" in pushed_to(desk, user)[1]
    again = say(desk, user, "How do I set up the VPN?")
    wait_until(lambda: replied(desk, again))
    idle(desk)
    assert len(desk.model.calls) > after_start  # the model answers again
    assert len(desk.teams.in_conversation(DESK)) == 1, "one card per handoff in the channel"


def test_a_teams_customer_handed_to_the_teams_desk_gets_the_replies_proactively(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    desk.teams.reset()
    chat = f"a:{uuid.uuid4().hex}"

    def ask(text: str) -> dict[str, Any]:
        body = desk.teams.activity(text, conversation=chat, tenant=STAFF, user="29:customer", aad="aad-customer")
        to_teams(desk, body)
        return body

    trigger = ask("Can I talk to a person please?")
    (card,) = wait_until(lambda: desk.teams.in_conversation(DESK))
    (notice,) = wait_until(lambda: desk.teams.in_conversation(chat))
    assert notice.reply_to == trigger["id"] and "person" in notice.text.lower()
    assert "Teams" in card_of(card)
    chain = f"{DESK};messageid={card.id}"
    reply = desk.teams.activity("Hi, this is Mei from support.", conversation=chain, kind="channel", channel=DESK,
                                tenant=STAFF, user="29:agent", aad="aad-agent", mention=True)  # fmt: skip
    to_teams(desk, reply)
    to_teams(desk, reply)  # redelivered
    wait_until(lambda: any("Mei" in m.text for m in desk.teams.in_conversation(chat)))
    idle(desk)
    proactive = [m for m in desk.teams.in_conversation(chat) if "Mei" in m.text]
    assert len(proactive) == 1 and proactive[0].reply_to is None  # sent into the chat, not as a reply
    value = {"askhub": "askhub-desk", "kind": "resolve", "h": "x"}
    to_teams(desk, desk.teams.activity("", conversation=chain, kind="channel", channel=DESK, tenant=STAFF,
                                       user="29:agent", aad="aad-agent", value=value, reply_to=card.id))  # fmt: skip
    wait_until(lambda: "Resolved by" in card_of(desk.teams.messages[card.id]))
    wait_until(lambda: len(desk.teams.in_conversation(chat)) == 3)  # the notice, the reply, the end
    again = ask("How do I set up the VPN?")
    (answer,) = wait_until(
        lambda: [m for m in desk.teams.in_conversation(chat) if m.reply_to == again["id"] and m.updates]
    )
    assert "[gpt-4o" in answer.text  # the bot answers again
    logged = logged_text(caplog.records)
    assert "Mei from support" not in logged and "talk to a person" not in logged.lower()
    assert APP_PASSWORD not in logged and "Bearer" not in logged


def test_a_thumbs_down_offers_a_person_and_the_tap_starts_a_handoff(desk: Desk) -> None:
    desk.teams.reset()
    chat = f"a:{uuid.uuid4().hex}"
    asked = desk.teams.activity("How do I set up the VPN?", conversation=chat, tenant=STAFF, aad="aad-customer-2")
    to_teams(desk, asked)
    (answer,) = wait_until(lambda: [m for m in desk.teams.in_conversation(chat) if m.updates])
    down = answer.activity["attachments"][0]["content"]["actions"][1]["data"]
    to_teams(desk, desk.teams.activity("", conversation=chat, tenant=STAFF, aad="aad-customer-2", value=down))
    (thanks,) = wait_until(lambda: [m for m in desk.teams.in_conversation(chat) if "Thanks" in m.text])
    (button,) = thanks.activity["attachments"][0]["content"]["actions"]
    assert button["title"] == "Talk to a person" and button["data"]["msteams"]["type"] == "imBack"
    # Teams sends the button's text as the user's own message: the handoff starts.
    tap = desk.teams.activity(button["data"]["msteams"]["value"], conversation=chat, tenant=STAFF, aad="aad-customer-2")
    to_teams(desk, tap)
    (card,) = wait_until(lambda: desk.teams.in_conversation(DESK))
    assert "Teams" in card_of(card)
    idle(desk)
