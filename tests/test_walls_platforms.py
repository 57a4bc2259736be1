"""The wall at every chat door: Slack, LINE, Discord interactions and the Discord gateway bot,
each mapped to the customer tenant ``cs`` (collection ``public`` only), on both backends.

The real SDKs talk to the fakes; the fake upstream records every prompt. A customer asking for
the internal bonus memo on any platform never sees it — not in the reply, not in the prompt —
and an employee's workspace (mapped to ``hr``) does, which shows the test can tell.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.line_api import BOT_USER_ID, FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_walls import BONUS_Q, RETURNS_Q, SECRET, kb_config, prompts, walled_kb  # noqa: F401 - a fixture

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")

SLACK_SECRET, LINE_SECRET, LINE_TOKEN = "walls-slack-signing-secret", "walls-line-secret", "walls-line-token"
CUSTOMER_TEAM, STAFF_TEAM, OTHER_TEAM, BOT = "TCUSTOMER", "TSTAFF", "TSTRANGER", "UBOT"


@dataclass
class Doors:
    hub: HubServer
    upstream: FakeOpenAI
    slack: FakeSlack
    line: FakeLineAPI
    discord: FakeDiscord
    key: SigningKey


def wait_until(condition: Callable[[], Any], timeout: float = 20) -> Any:
    """Waits for an event the fakes record (never a sleep that proves nothing happened)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError("the answer did not arrive")


@pytest.fixture(scope="module", params=["memory", "redis"])
def doors(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    walled_kb: tuple[Path, Path],  # noqa: F811 - the fixture imported above
) -> Iterator[Doors]:
    kb_dir, index_dir = walled_kb
    tmp = tmp_path_factory.mktemp(f"walls-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    key = SigningKey.generate()
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as upstream,
        FakeSlack() as slack,
        FakeLineAPI(access_token=LINE_TOKEN) as line,
        FakeDiscord() as discord,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        config = write_yaml(tmp / "hub.yaml", kb_config(
            slack={"tenants": {CUSTOMER_TEAM: "cs", STAFF_TEAM: "hr"}},
            line={"tenant": "cs"},
            # The README's example: the community guild is the customer desk's; DMs are placed nowhere.
            discord={"tenants": {str(discord.guild_id): "cs"}},
        ))  # fmt: skip
        settings = make_settings(
            tmp, KB_DIR=str(kb_dir), INDEX_DIR=str(index_dir), HUB_CONFIG=str(config), EMBEDDINGS="hash",
            OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=upstream.base_url, RATE_LIMIT_MAX_PER_USER="1000",
            SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url,
            LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN=LINE_TOKEN, LINE_API_URL=line.url,
            DISCORD_BOT_TOKEN=discord.token, DISCORD_API_URL=discord.api_url,
            DISCORD_PUBLIC_KEY=key.verify_key.encode().hex(), DISCORD_APPLICATION_ID=str(discord.application_id),
            **env,
        )  # fmt: skip
        with HubServer(settings, run_adapters=True) as hub:
            discord.wait_ready()
            yield Doors(hub, upstream, slack, line, discord, key)


@pytest.fixture
def doors_reset(doors: Doors) -> Doors:
    doors.upstream.reset()
    return doors


def unmapped(doors: Doors, platform: str) -> float:
    return metric(doors.hub.url, "hub_adapter_events_total", platform=platform, outcome="unmapped")


def slack_mention(doors: Doors, team: str, text: str) -> str:
    ts = f"{time.time():.6f}"
    event = {"type": "app_mention", "user": "U0001", "text": f"<@{BOT}> {text}", "ts": ts, "channel": "C0001",
             "event_ts": ts, "team": team}  # fmt: skip
    payload = {"token": "t", "team_id": team, "api_app_id": "A0001", "event": event, "type": "event_callback",
               "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}", "event_time": int(time.time()),
               "authorizations": [{"team_id": team, "user_id": BOT, "is_bot": True}]}  # fmt: skip
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": f"v0={signature}"}  # fmt: skip
    response = httpx.post(f"{doors.hub.url}/slack/events", content=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return ts


def test_slack_customer_workspace_is_walled_staff_workspace_is_not(doors_reset: Doors) -> None:
    doors = doors_reset
    written = slack_answer(doors, CUSTOMER_TEAM)
    assert SECRET not in json.dumps([c.body for c in written], default=str)
    assert SECRET not in prompts(doors.upstream)
    doors.upstream.reset()
    slack_answer(doors, STAFF_TEAM)
    assert SECRET in prompts(doors.upstream), "the staff workspace reads the internal collection"


def slack_answer(doors: Doors, team: str) -> list[Any]:
    """What the bot wrote to Slack for one mention, once its answer is complete."""
    seen = len(doors.slack.calls)
    slack_mention(doors, team, BONUS_Q)

    def finished() -> list[Any]:
        calls = doors.slack.calls[seen:]
        done = [c for c in calls if c.get("blocks") and c.method in ("chat.update", "chat.stopStream",
                                                                     "chat.postMessage")]  # fmt: skip
        return calls if done else []

    return wait_until(finished)


def test_line_customer_is_walled(doors_reset: Doors) -> None:
    doors = doors_reset
    doors.line.reset()
    user = "U" + uuid.uuid4().hex
    event = {"type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
             "source": {"type": "user", "userId": user}, "webhookEventId": "01" + uuid.uuid4().hex[:24].upper(),
             "deliveryContext": {"isRedelivery": False}, "replyToken": doors.line.issue_token(),
             "message": {"type": "text", "id": str(uuid.uuid4().int)[:18], "quoteToken": "q", "text": BONUS_Q}}  # fmt: skip
    body = json.dumps({"destination": BOT_USER_ID, "events": [event]}).encode()
    signature = base64.b64encode(hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    response = httpx.post(f"{doors.hub.url}/line/webhook", content=body, timeout=10,
                          headers={"Content-Type": "application/json", "X-Line-Signature": signature})  # fmt: skip
    assert response.status_code == 200, response.text
    sent = wait_until(lambda: doors.line.replies() + doors.line.pushes())
    assert SECRET not in json.dumps([c.json for c in sent], ensure_ascii=False)
    assert "year-end-bonus" not in json.dumps([c.json for c in sent]), "not even the document's name"
    assert SECRET not in prompts(doors.upstream)


def test_discord_interaction_is_walled(doors_reset: Doors) -> None:
    doors = doors_reset
    data = {"id": "1", "name": "ask", "type": 1, "options": [{"name": "question", "type": 3, "value": BONUS_Q}]}
    interaction = doors.discord.interaction(2, data)
    body = json.dumps(interaction).encode()
    stamp = str(int(time.time()))
    signature = doors.key.sign(stamp.encode() + body).signature.hex()
    response = httpx.post(f"{doors.hub.url}/discord/interactions", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Signature-Ed25519": signature, "X-Signature-Timestamp": stamp})  # fmt: skip
    assert response.status_code == 200, response.text
    token = interaction["token"]
    patch = doors.discord.wait_for(lambda c: c.method == "PATCH" and c.path.endswith(f"/{token}/messages/@original"),
                                   timeout=20)  # fmt: skip
    assert SECRET not in json.dumps(patch.json) and SECRET not in prompts(doors.upstream)


def test_discord_gateway_bot_is_walled(doors_reset: Doors) -> None:
    doors = doors_reset
    question = doors.discord.send_message(f"<@{doors.discord.bot_id}> {BONUS_Q}", mention_bot=True)
    thread = question["id"]
    answers = wait_until(lambda: [m for m in doors.discord.channel_messages(thread) if m["components"]])
    assert SECRET not in json.dumps(answers) and SECRET not in prompts(doors.upstream)


def test_discord_dm_is_placed_nowhere_and_not_answered(doors_reset: Doors, caplog: pytest.LogCaptureFixture) -> None:
    """The finding: a guild mention got "I don't know" but a DM to the same bot the internal memo.
    With a guild map and no ``discord.dm_tenant`` a DM is unplaced: seen, counted, logged, unanswered."""
    doors = doors_reset
    before = unmapped(doors, "discord")
    with caplog.at_level(logging.INFO, logger="askhub.walls"):
        dm = doors.discord.send_message(BONUS_Q, dm=True)
        wait_until(lambda: unmapped(doors, "discord") > before)
    assert not [m for m in doors.discord.channel_messages(dm["channel_id"]) if m["author"]["bot"]]
    assert not doors.upstream.calls, "nothing was asked"
    assert any(getattr(r, "event", None) == "unmapped" and getattr(r, "id", None) == "dm" for r in caplog.records)


def test_discord_interaction_from_an_unmapped_guild_gets_a_note_not_an_answer(doors_reset: Doors) -> None:
    doors = doors_reset
    before = unmapped(doors, "discord")
    data = {"id": "1", "name": "ask", "type": 1, "options": [{"name": "question", "type": 3, "value": BONUS_Q}]}
    interaction = doors.discord.interaction(2, data, guild_id="999000111222333444")
    body = json.dumps(interaction).encode()
    stamp = str(int(time.time()))
    signature = doors.key.sign(stamp.encode() + body).signature.hex()
    response = httpx.post(f"{doors.hub.url}/discord/interactions", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Signature-Ed25519": signature, "X-Signature-Timestamp": stamp})  # fmt: skip
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["type"] == 4 and reply["data"]["flags"] == 64, "an ephemeral note, not a deferred answer"
    assert SECRET not in response.text and unmapped(doors, "discord") == before + 1
    assert not doors.upstream.calls


def test_slack_unmapped_workspace_is_not_answered(doors_reset: Doors, caplog: pytest.LogCaptureFixture) -> None:
    doors = doors_reset
    before, seen = unmapped(doors, "slack"), len(doors.slack.calls)
    with caplog.at_level(logging.INFO, logger="askhub.walls"):
        slack_mention(doors, OTHER_TEAM, BONUS_Q)  # acknowledged with a 200 (asserted inside)
        wait_until(lambda: unmapped(doors, "slack") > before)
        assert not [c for c in doors.slack.calls[seen:] if c.method.startswith("chat.")]
        assert not doors.upstream.calls
        slack_mention(doors, OTHER_TEAM, RETURNS_Q)
        wait_until(lambda: unmapped(doors, "slack") > before + 1)
    lines = [
        r for r in caplog.records if getattr(r, "event", None) == "unmapped" and getattr(r, "id", None) == OTHER_TEAM
    ]
    assert len(lines) == 1, "logged once per id, with the id"


def test_discord_gateway_ask_in_a_dm_gets_a_note_not_an_answer(doors_reset: Doors) -> None:
    doors = doors_reset
    before = unmapped(doors, "discord")
    data = {"id": "1", "name": "ask", "type": 1, "options": [{"name": "question", "type": 3, "value": BONUS_Q}]}
    interaction = doors.discord.interaction(2, data, dm=True)
    doors.discord.dispatch("INTERACTION_CREATE", interaction)
    path = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    callback = doors.discord.wait_for(lambda c: c.path == path, timeout=20)
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] == 64, "an ephemeral note, not deferred"
    assert SECRET not in json.dumps(callback.json) and unmapped(doors, "discord") == before + 1
    assert not doors.upstream.calls


def test_slack_command_from_an_unmapped_workspace_is_not_answered(doors_reset: Doors) -> None:
    from urllib.parse import urlencode

    doors = doors_reset
    before, seen = unmapped(doors, "slack"), len(doors.slack.calls)
    fields = {"command": "/ask", "text": BONUS_Q, "team_id": OTHER_TEAM, "channel_id": "C0001", "user_id": "U0001",
              "trigger_id": uuid.uuid4().hex, "response_url": doors.slack.response_url("cmd"), "api_app_id": "A0001"}  # fmt: skip
    body = urlencode(fields).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    response = httpx.post(f"{doors.hub.url}/slack/events", content=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={signature}"})  # fmt: skip
    assert response.status_code == 200 and SECRET not in response.text
    assert unmapped(doors, "slack") == before + 1
    assert not [c for c in doors.slack.calls[seen:] if c.method.startswith("chat.")] and not doors.upstream.calls
