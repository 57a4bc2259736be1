"""The Teams adapter against a real-HTTP fake of the Bot Framework (OpenID metadata, signing keys,
token endpoint, connector), pointed at through TEAMS_OPENID_URL / TEAMS_TOKEN_URL and the
activities' serviceUrl. Activities are signed as the Bot Framework signs them (RS256 JWT) and
posted to the real hub on loopback.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.teams import render
from core.schema import AskResult, Source, Usage
from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.teams_api import MAX_ACTIVITY_BYTES, FakeTeams, TeamsMessage

APP_ID, APP_PASSWORD = "3f1c-askhub-app", "teams-secret-for-tests"
STAFF, STRANGER = "tenant-staff", "aad-tenant-unknown"
VPN_QUESTION = "How do I connect to the VPN with FortiClient?"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTeams]:
    with FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD) as teams:
        yield teams


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeTeams) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("teams")
    config = write_yaml(tmp / "hub.yaml", {"teams": {"tenants": {STAFF: "default"}}})
    settings = make_settings(tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), TEAMS_APP_ID=APP_ID,
                             TEAMS_APP_PASSWORD=APP_PASSWORD, TEAMS_OPENID_URL=fake.openid_url,
                             TEAMS_TOKEN_URL=fake.token_url)  # fmt: skip
    with HubServer(settings) as hub:
        yield hub


@pytest.fixture
def teams(fake: FakeTeams, server: HubServer) -> FakeTeams:
    fake.reset()
    return fake


def post(server: HubServer, teams: FakeTeams, body: dict[str, Any], **sign: Any) -> httpx.Response:
    headers = teams.auth_header(body, **sign) if sign.pop("signed", True) else {}
    return httpx.post(f"{server.url}/teams/messages", json=body, headers=headers, timeout=10)


def wait(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return found


def answered(teams: FakeTeams, conversation: str) -> list[TeamsMessage]:
    return wait(lambda: [m for m in teams.in_conversation(conversation) if m.updates], f"an answer in {conversation}")


def idle(server: HubServer) -> None:
    server.run(server.hub.inbox.idle(), timeout=30)


# --- who may post -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sign",
    [
        {"signed": False},
        {"expired": True},
        {"audience": "some-other-bot"},
        {"stranger": True},
        {"issuer": "https://sts.windows.net/evil/"},
        {"service_url": "https://evil.example/"},
    ],
    ids=["missing", "expired", "wrong_audience", "wrong_key", "wrong_issuer", "other_service_url"],
)
def test_a_token_that_is_not_the_bot_frameworks_gets_401_and_no_answer(
    server: HubServer, teams: FakeTeams, sign: dict[str, Any]
) -> None:
    body = teams.activity(VPN_QUESTION, conversation=f"a:{uuid.uuid4().hex}")
    response = post(server, teams, body, **sign)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "unauthorized"
    idle(server)
    assert teams.all() == []


def test_a_valid_token_is_accepted_and_the_keys_are_cached(server: HubServer, teams: FakeTeams) -> None:
    before = teams.key_requests
    for _ in range(3):
        body = teams.activity(VPN_QUESTION, conversation=f"a:{uuid.uuid4().hex}")
        assert post(server, teams, body).status_code == 200
    assert teams.key_requests - before <= 1  # fetched at most once (the first test may have fetched them)
    idle(server)


def test_a_body_that_is_not_an_activity_is_a_clear_400(server: HubServer, teams: FakeTeams) -> None:
    response = httpx.post(f"{server.url}/teams/messages", content=b"[1, 2", timeout=10,
                          headers={**teams.auth_header(), "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


# --- answered once, in the right place ------------------------------------------------------------


def test_a_personal_chat_is_answered_once_in_its_reply_chain_with_sources_and_feedback(
    server: HubServer, teams: FakeTeams
) -> None:
    conversation = f"a:{uuid.uuid4().hex}"
    body = teams.activity(VPN_QUESTION, conversation=conversation)
    assert post(server, teams, body).status_code == 200
    (message,) = answered(teams, conversation)
    idle(server)
    assert teams.in_conversation(conversation) == [message], "one message: the stream, ended by the answer"
    assert message.reply_to == body["id"]
    assert message.stream[0]["type"] == "typing" and message.ended and teams.stream_errors == []
    assert message.activity["type"] == "message" and message.updates == 1
    assert "VPN" in message.text or "FortiClient" in message.text
    (card,) = message.activity["attachments"]
    content = json.dumps(card, ensure_ascii=False)
    assert "Sources" in content and "[1]" in content
    assert [a["title"] for a in card["content"]["actions"]] == ["👍", "👎"]
    cited, final = message.activity["entities"]
    assert final == {"type": "streaminfo", "streamId": message.id, "streamType": "final"}
    assert cited["@type"] == "Message" and cited["citation"][0]["position"] == 1
    assert cited["citation"][0]["appearance"]["name"]


def test_a_group_chat_is_answered_only_when_the_bot_is_mentioned(server: HubServer, teams: FakeTeams) -> None:
    conversation = f"19:{uuid.uuid4().hex}@thread.v2"
    unaddressed = teams.activity(VPN_QUESTION, conversation=conversation, kind="groupChat")
    addressed = teams.activity(VPN_QUESTION, conversation=conversation, kind="groupChat", mention=True)
    assert post(server, teams, unaddressed).status_code == 200
    assert post(server, teams, addressed).status_code == 200
    (message,) = answered(teams, conversation)
    idle(server)
    assert len(teams.in_conversation(conversation)) == 1
    assert message.reply_to == addressed["id"]
    # Teams streams bots in personal chats only: here "…" is edited into the answer, no stream.
    assert message.history[0]["text"] == render.THINKING and message.stream == [] and message.updates == 1
    assert "streaminfo" not in message.everything() and "VPN" in message.text


def test_a_channel_mention_is_answered_in_the_posts_reply_chain(server: HubServer, teams: FakeTeams) -> None:
    channel = f"19:{uuid.uuid4().hex}@thread.tacv2"
    new_post = teams.activity(VPN_QUESTION, conversation=channel, kind="channel", mention=True)
    assert post(server, teams, new_post).status_code == 200
    chain = f"{channel};messageid={new_post['id']}"
    (message,) = answered(teams, chain)
    assert message.reply_to == new_post["id"]
    # A mention inside an existing reply chain is answered in that chain.
    root = "1700000000001"
    in_thread = teams.activity("How do I reset my password?", conversation=f"{channel};messageid={root}",
                               kind="channel", mention=True)  # fmt: skip
    assert post(server, teams, in_thread).status_code == 200
    (reply,) = answered(teams, f"{channel};messageid={root}")
    idle(server)
    assert reply.reply_to == in_thread["id"]
    assert [m.conversation.split(";")[0] for m in teams.all()] == [channel, channel]


def test_a_personal_chat_streams_the_answer_within_teams_pace_and_ends_with_it(
    tmp_path: Path, sample_index: Path, teams: FakeTeams
) -> None:
    from tests.fakes.openai_upstream import FakeOpenAI

    words = " ".join(f"step{n}" for n in range(60))
    reply = f"Open FortiClient and choose the company VPN profile [1]. Then {words}. Sign in with your SSO [2]."
    with FakeOpenAI() as model:
        model.set_behavior(None, reply=reply)
        model.chunk_delay = 0.06  # about 80 chunks: a model typing for some five seconds
        config = write_yaml(tmp_path / "hub.yaml", {"teams": {"tenants": {STAFF: "default"}}})
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk",
                                 OPENAI_BASE_URL=model.base_url, TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD=APP_PASSWORD,
                                 TEAMS_OPENID_URL=teams.openid_url, TEAMS_TOKEN_URL=teams.token_url)  # fmt: skip
        with HubServer(settings) as hub:
            conversation = f"a:{uuid.uuid4().hex}"
            body = teams.activity(VPN_QUESTION, conversation=conversation)
            assert post(hub, teams, body).status_code == 200
            (message,) = answered(teams, conversation)
            idle(hub)
    assert teams.in_conversation(conversation) == [message] and message.reply_to == body["id"]
    assert teams.rate_limited == 0 and teams.stream_errors == []  # never faster than Teams allows, in order
    opening, *growing = message.stream
    assert opening["entities"] == [{"type": "streaminfo", "streamType": "informative", "streamSequence": 1}]
    assert len(growing) >= 2, [a["text"][:30] for a in message.stream]  # the answer grew in front of the user
    infos = [a["entities"][0] for a in growing]
    assert all(i["streamType"] == "streaming" and i["streamId"] == message.id for i in infos)
    sequences = [i["streamSequence"] for i in infos]
    assert sequences == sorted(set(sequences)) and sequences[0] == 2
    assert all(a["type"] == "typing" and a["text"] in reply for a in growing)
    # One final message ends the stream: the whole answer, its citations and the sources card.
    final = message.activity
    assert final["type"] == "message" and message.ended and message.updates == 1
    assert reply in final["text"] and len(final["text"]) > len(growing[-1]["text"])
    cited, info = final["entities"]
    assert info == {"type": "streaminfo", "streamId": message.id, "streamType": "final"}
    assert cited["@type"] == "Message" and [c["position"] for c in cited["citation"]][:2] == [1, 2]
    (card,) = final["attachments"]
    assert "Sources" in json.dumps(card) and [a["title"] for a in card["content"]["actions"]] == ["👍", "👎"]


def test_a_redelivered_activity_is_answered_once(server: HubServer, teams: FakeTeams) -> None:
    conversation = f"a:{uuid.uuid4().hex}"
    body = teams.activity(VPN_QUESTION, conversation=conversation)
    duplicates = metric(server.url, "hub_adapter_events_total", platform="teams", outcome="duplicate")
    assert post(server, teams, body).status_code == 200
    assert post(server, teams, body).status_code == 200  # at once, while the first is being answered
    answered(teams, conversation)
    idle(server)
    assert post(server, teams, body).status_code == 200  # and after it was answered
    idle(server)
    assert len(teams.in_conversation(conversation)) == 1
    assert metric(server.url, "hub_adapter_events_total", platform="teams", outcome="duplicate") == duplicates + 2


def test_an_unmapped_tenant_is_refused_and_logged_once(
    server: HubServer, teams: FakeTeams, caplog: pytest.LogCaptureFixture
) -> None:
    refused = metric(server.url, "hub_adapter_events_total", platform="teams", outcome="refused")
    caplog.set_level(logging.WARNING, logger="askhub.teams")
    conversation = f"a:{uuid.uuid4().hex}"
    for _ in range(2):
        assert (
            post(server, teams, teams.activity(VPN_QUESTION, conversation=conversation, tenant=STRANGER)).status_code
            == 200
        )
    idle(server)
    assert teams.in_conversation(conversation) == []
    assert metric(server.url, "hub_adapter_events_total", platform="teams", outcome="refused") == refused + 2
    lines = [r for r in caplog.records if "not in teams.tenants" in r.getMessage()]
    assert len(lines) == 1 and getattr(lines[0], "aad_tenant", None) == STRANGER


def test_a_long_answer_is_split_into_messages_teams_accepts() -> None:
    long = " ".join(f"第{n}段：請先連上公司 VPN，再開啟 FortiClient 並輸入帳號密碼。" for n in range(2000))
    result = AskResult(VPN_QUESTION, long, [Source("vpn#1", "VPN 設定", "…", 0.9)], "extractive", False,
                       Usage(0, 0, 0), "r" + "0" * 31)  # fmt: skip
    activities = render.answer_activities(result)
    assert len(activities) > 1
    for activity in activities:
        assert len(json.dumps(activity, ensure_ascii=False, separators=(",", ":")).encode()) <= MAX_ACTIVITY_BYTES
    assert "attachments" in activities[-1]


# --- feedback -------------------------------------------------------------------------------------


def test_a_thumbs_up_on_the_card_is_recorded_and_thanked_in_the_chain(server: HubServer, teams: FakeTeams) -> None:
    conversation = f"a:{uuid.uuid4().hex}"
    assert post(server, teams, teams.activity(VPN_QUESTION, conversation=conversation)).status_code == 200
    (message,) = answered(teams, conversation)
    up = message.activity["attachments"][0]["content"]["actions"][0]["data"]
    click = teams.activity("", conversation=conversation, value=up, reply_to=message.id)
    assert post(server, teams, click).status_code == 200
    thanks = wait(lambda: [m for m in teams.in_conversation(conversation) if "Thanks" in m.text], "the thanks")
    assert thanks[0].reply_to == click["id"]
    recent = server.run(server.hub.feedback.recent())
    assert [(r["request_id"], r["rating"], r["platform"]) for r in recent][-1] == (up["id"], "up", "teams")


def test_a_forged_vote_for_someone_elses_answer_is_not_stored(server: HubServer, teams: FakeTeams) -> None:
    conversation = f"a:{uuid.uuid4().hex}"
    value = {"askhub": "askhub-fb", "r": "down", "id": uuid.uuid4().hex, "l": "en"}
    assert post(server, teams, teams.activity("", conversation=conversation, value=value)).status_code == 200
    wait(lambda: teams.in_conversation(conversation), "the thanks")
    idle(server)
    assert value["id"] not in json.dumps(server.run(server.hub.feedback.recent()))


def test_a_model_answer_over_28_kb_reaches_teams_as_several_messages(
    tmp_path: Path, sample_index: Path, teams: FakeTeams
) -> None:
    from tests.fakes.openai_upstream import FakeOpenAI

    long = "\n\n".join(
        f"Step {n}: open FortiClient, choose the company VPN profile and sign in. [1]" for n in range(900)
    )
    with FakeOpenAI() as model:
        model.set_behavior(None, reply=long)
        config = write_yaml(tmp_path / "hub.yaml", {"teams": {"tenants": {STAFF: "default"}}})
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk",
                                 OPENAI_BASE_URL=model.base_url, TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD=APP_PASSWORD,
                                 TEAMS_OPENID_URL=teams.openid_url, TEAMS_TOKEN_URL=teams.token_url)  # fmt: skip
        with HubServer(settings) as hub:
            conversation = f"a:{uuid.uuid4().hex}"
            body = teams.activity(VPN_QUESTION, conversation=conversation)
            assert post(hub, teams, body).status_code == 200
            answered(teams, conversation)
            idle(hub)
    assert len(long.encode()) > 2 * MAX_ACTIVITY_BYTES
    messages = teams.in_conversation(conversation)
    assert teams.refused == [] and len(messages) >= 3, [m.text[:40] for m in messages]
    assert all(m.reply_to == body["id"] for m in messages)  # every part in the reply chain
    assert "Step 0:" in messages[0].text and "attachments" in messages[-1].activity
    assert messages[0].ended and all(not m.stream for m in messages[1:])  # the stream ends with part one


def test_rolled_keys_are_fetched_again_but_forged_kids_do_not_hammer_the_metadata(
    server: HubServer, teams: FakeTeams
) -> None:
    body = teams.activity(VPN_QUESTION, conversation=f"a:{uuid.uuid4().hex}")
    assert post(server, teams, body).status_code == 200  # the current key is cached
    teams.rotate()
    fetched = teams.key_requests
    body = teams.activity(VPN_QUESTION, conversation=f"a:{uuid.uuid4().hex}")
    assert post(server, teams, body).status_code == 200  # an unknown kid: the keys once more
    assert teams.key_requests == fetched + 1
    for _ in range(3):
        assert post(server, teams, body, stranger=True).status_code == 401
    assert teams.key_requests == fetched + 1, "refreshed moments ago: a forged kid is refused without a fetch"
    idle(server)


# --- settings -------------------------------------------------------------------------------------


def test_the_teams_desk_needs_its_channel_and_the_teams_credentials(tmp_path: Path) -> None:
    from core.config import ConfigError

    config = write_yaml(tmp_path / "hub.yaml", {"handoff": {"desk": "teams"}})
    with pytest.raises(ConfigError) as raised:
        make_settings(tmp_path, HUB_CONFIG=str(config))
    assert "teams_channel is required with desk: teams" in str(raised.value) and "\n" not in str(raised.value)
    config = write_yaml(tmp_path / "hub.yaml", {"handoff": {"desk": "teams", "teams_channel": "19:a@thread.tacv2"}})
    without = make_settings(tmp_path, HUB_CONFIG=str(config), SLACK_BOT_TOKEN="xoxb-1")  # Slack's token is not enough
    with_teams = make_settings(tmp_path, HUB_CONFIG=str(config), TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD=APP_PASSWORD)
    from core.hub import Hub

    assert not Hub(without).handoff.enabled
    hub = Hub(with_teams)
    assert (
        hub.handoff.enabled and hub.handoff.desk_platform == "teams" and hub.handoff.desk_channel == "19:a@thread.tacv2"
    )


def test_the_teams_password_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "teams-password"
    secret.write_text(APP_PASSWORD + "\n", encoding="utf-8")
    settings = make_settings(tmp_path, TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD_FILE=str(secret))
    assert settings.teams_app_password is not None and settings.teams_app_password.get_secret_value() == APP_PASSWORD
