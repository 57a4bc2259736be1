"""WhatsApp -> a Teams desk -> WhatsApp: ``handoff.desk: teams`` with the WhatsApp door's httpx
client against the WhatsApp fake and the Teams adapter against the Bot Framework fake, on memory
and Redis.

A WhatsApp customer asks for a person; the agents' Teams channel gets one card (Take / Resolve);
the customer's messages go into its reply chain and the agent's replies there come back to
WhatsApp, each exactly once (WhatsApp's and the Bot Framework's redeliveries too); the bot says
nothing (the fake upstream counts every model call) until Resolve; then it answers again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.teams_api import FakeTeams
from tests.fakes.waiting import wait_until
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.fakes.whatsapp_webhook import message, new_user, payload, post, whatsapp_env

APP_ID, APP_PASSWORD = "wa-desk-teams-app", "wa-desk-teams-secret"
DESK, STAFF = "19:wa-agents@thread.tacv2", "aad-company"


@dataclass
class Desk:
    hub: HubServer
    teams: FakeTeams
    wa: FakeWhatsApp
    model: FakeOpenAI


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"wa-teams-desk-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as model,
        FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD) as teams,
        FakeWhatsApp() as wa,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        config = write_yaml(tmp / "hub.yaml", {
            "whatsapp": {"tenant": "cs", "window_template": "askhub_reopen"},
            "teams": {"tenants": {STAFF: "default"}, "service_url": teams.service_url},
            "handoff": {"desk": "teams", "teams_channel": DESK},
        })  # fmt: skip
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", TEAMS_APP_ID=APP_ID,
            TEAMS_APP_PASSWORD=APP_PASSWORD, TEAMS_OPENID_URL=teams.openid_url, TEAMS_TOKEN_URL=teams.token_url,
            **whatsapp_env(wa), **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield Desk(hub, teams, wa, model)


def idle(desk: Desk) -> None:
    desk.hub.run(desk.hub.hub.jobs.idle(), timeout=20)


def say(desk: Desk, user: str, text: str) -> dict[str, Any]:
    sent = message(user, text)
    assert post(desk.hub, payload(sent)).status_code == 200
    return sent


def to_teams(desk: Desk, body: dict[str, Any]) -> None:
    response = desk.teams.deliver(desk.hub.url, body)
    assert response.status_code == 200, response.text


def test_a_whatsapp_customer_to_the_teams_desk_and_back_once_each_way(desk: Desk) -> None:
    desk.teams.reset()
    user = new_user()
    say(desk, user, "How do I set up the VPN?")  # the bot answers as usual
    wait_until(lambda: desk.wa.to(user))
    idle(desk)
    assert not desk.teams.in_conversation(DESK)

    say(desk, user, "I want to talk to a person")
    (card,) = wait_until(lambda: desk.teams.in_conversation(DESK))  # one card in the channel
    chain = f"{DESK};messageid={card.id}"
    wait_until(lambda: len(desk.wa.to(user)) == 2)
    idle(desk)
    assert "person" in desk.wa.texts_to(user)[1]  # told, in English
    shown = card.cards()
    assert (
        '"kind": "take"' in shown and '"kind": "resolve"' in shown and "WhatsApp" in shown and '"value": "cs"' in shown
    )
    (summary,) = wait_until(lambda: desk.teams.in_conversation(chain))
    assert "VPN" in summary.text  # the conversation so far, in the card's reply chain
    after_start = len(desk.model.calls)

    # Customer -> agents: once in the chain, also when WhatsApp redelivers the same message id.
    order = message(user, "my order is 123")
    assert post(desk.hub, payload(order)).status_code == 200
    wait_until(lambda: any("my order is 123" in m.text for m in desk.teams.in_conversation(chain)))
    assert post(desk.hub, payload(order)).status_code == 200
    idle(desk)
    assert [m.text for m in desk.teams.in_conversation(chain) if "my order" in m.text] == [
        "**Customer:** my order is 123"
    ]
    assert len(desk.wa.to(user)) == 2 and len(desk.model.calls) == after_start  # the bot stays silent

    # Agent -> customer: the reply in the card's chain reaches WhatsApp once, redelivered or not.
    reply = desk.teams.activity("Hello, this is Mei from support; checking now", conversation=chain, kind="channel",
                                channel=DESK, tenant=STAFF, user="29:agent", aad="aad-agent", mention=True)  # fmt: skip
    to_teams(desk, reply)
    wait_until(lambda: len(desk.wa.to(user)) == 3)
    to_teams(desk, reply)  # the Bot Framework redelivers the activity
    idle(desk)
    assert desk.wa.texts_to(user)[2:] == ["Hello, this is Mei from support; checking now"]
    assert len(desk.model.calls) == after_start

    # Resolve from the card: the card says so, the customer is told once, the bot answers again.
    value = {"askhub": "askhub-desk", "kind": "resolve", "h": "x"}
    to_teams(desk, desk.teams.activity("", conversation=chain, kind="channel", channel=DESK, tenant=STAFF,
                                       user="29:agent", aad="aad-agent", value=value, reply_to=card.id))  # fmt: skip
    wait_until(lambda: "Resolved by" in desk.teams.messages[card.id].cards())
    assert '"kind": "resolve"' not in desk.teams.messages[card.id].cards()
    wait_until(lambda: len(desk.wa.to(user)) == 4)
    assert "closed this conversation" in desk.wa.texts_to(user)[3]
    again = say(desk, user, "How do I set up the VPN?")
    wait_until(lambda: len(desk.wa.to(user)) == 5)
    idle(desk)
    assert len(desk.model.calls) > after_start  # the model answers again
    assert desk.wa.to(user)[4].body["context"] == {"message_id": again["id"]}
    assert len(desk.wa.to(user)) == 5
    assert len(desk.teams.in_conversation(DESK)) == 1, "one card per handoff in the channel"
    assert not any("VPN" in m.text for m in desk.teams.in_conversation(chain)[1:])  # the new question stays out
