"""Discord HTTP interactions: `POST /discord/interactions` signed with a test Ed25519 key.

The hub runs with DISCORD_PUBLIC_KEY and DISCORD_APPLICATION_ID only (no bot token); answers go
to the fake Discord REST API through the interaction webhook; the model is FakeOpenAI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from core.messages import polite
from tests.conftest import HubServer, make_settings
from tests.fakes.discord_api import Call, FakeDiscord
from tests.fakes.openai_upstream import FakeOpenAI

QUOTA_GUILD = "1300000000000000777"  # mapped to a tenant with one question a day


@dataclass
class Env:
    server: HubServer
    discord: FakeDiscord
    openai: FakeOpenAI
    key: SigningKey
    http: httpx.Client

    def post(self, payload: dict[str, Any], *, sign_with: SigningKey | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        timestamp = str(int(time.time()))
        signature = (sign_with or self.key).sign(timestamp.encode() + body).signature.hex()
        headers = {
            "Content-Type": "application/json",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": timestamp,
        }
        return self.http.post(f"{self.server.url}/discord/interactions", content=body, headers=headers)

    def ask(self, question: str, **extra: Any) -> dict[str, Any]:
        data = {"id": "1", "name": "ask", "type": 1, "options": [{"name": "question", "type": 3, "value": question}]}
        return self.discord.interaction(2, data, **extra)

    def idle(self) -> None:
        self.server.run(self.server.hub.jobs.idle(), timeout=20)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("discord-http")
    config = tmp / "hub.yaml"
    config.write_text(
        f"tenants:\n  limited:\n    requests_per_day: 1\n"
        f"discord:\n  default_tenant: community\n  tenants:\n    '{QUOTA_GUILD}': limited\n",
        encoding="utf-8",
    )
    key = SigningKey.generate()
    with pytest.MonkeyPatch.context() as mp, FakeDiscord() as discord, FakeOpenAI(api_key="sk-test") as openai:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        settings = make_settings(
            tmp,
            INDEX_DIR=str(sample_index),
            HUB_CONFIG=str(config),
            DISCORD_PUBLIC_KEY=key.verify_key.encode().hex(),
            DISCORD_APPLICATION_ID=str(discord.application_id),
            DISCORD_API_URL=discord.api_url,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=openai.base_url,
        )
        with HubServer(settings) as server, httpx.Client(timeout=10) as http:
            yield Env(server, discord, openai, key, http)


def _original(env: Env, token: str) -> Call:
    return env.discord.wait_for(
        lambda c: c.method == "PATCH" and c.path.endswith(f"/{token}/messages/@original"), timeout=20
    )


def test_ping_is_answered_with_pong(env: Env) -> None:
    response = env.post({"id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1})
    assert response.status_code == 200
    assert response.json() == {"type": 1}


def test_bad_signature_is_401_with_the_contract_error(env: Env) -> None:
    ping = {"id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1}
    wrong_key = env.post(ping, sign_with=SigningKey.generate())
    assert wrong_key.status_code == 401
    assert wrong_key.json()["error"]["type"] == "unauthorized"

    body = json.dumps(ping).encode()
    timestamp = str(int(time.time()))
    signature = env.key.sign(timestamp.encode() + body).signature.hex()
    url = f"{env.server.url}/discord/interactions"
    tampered = env.http.post(
        url,
        content=body.replace(b'"type": 1', b'"type": 2'),
        headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp},
    )
    other_time = env.http.post(
        url, content=body, headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": "1"}
    )
    unsigned = env.http.post(url, content=body)
    not_hex = env.http.post(
        url, content=body, headers={"X-Signature-Ed25519": "zz", "X-Signature-Timestamp": timestamp}
    )
    for response in (tampered, other_time, unsigned, not_hex):
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"type", "message"}


def test_ask_is_deferred_at_once_then_the_answer_is_edited_in(env: Env) -> None:
    env.openai.set_behavior(mode="ok", delay=3)
    try:
        interaction = env.ask("How do I set up the VPN on my laptop?")
        response = env.post(interaction)
        acked = time.monotonic()
        assert response.status_code == 200
        assert response.json() == {"type": 5}
        # Deferred before the model (3 s) answered: nothing is edited in yet.
        assert not env.discord.find("PATCH", rf"/webhooks/\d+/{interaction['token']}/messages/@original")

        # Discord may deliver the same interaction twice: one answer only.
        assert env.post(interaction).json() == {"type": 5}
        env.idle()
    finally:
        env.openai.set_behavior(mode="ok")
    patch = _original(env, interaction["token"])
    assert patch.path == f"/webhooks/{env.discord.application_id}/{interaction['token']}/messages/@original"
    assert patch.time > acked  # after the deferred ack
    assert len(env.discord.find("PATCH", rf"/webhooks/\d+/{interaction['token']}/messages/@original")) == 1
    message = patch.json
    assert message["content"].startswith("[gpt-4o")
    assert message["allowed_mentions"] == {"parse": []}
    (embed,) = message["embeds"]
    assert embed["title"] == "Sources"
    assert 1 <= len(embed["fields"]) <= 25
    assert embed["fields"][0]["name"].startswith("1. ")
    assert "score" in embed["fields"][0]["value"]
    (row,) = message["components"]
    ids = [button["custom_id"] for button in row["components"]]
    assert [i.split(":")[2] for i in ids] == ["up", "down"]
    assert ids[0].split(":")[3] == ids[1].split(":")[3]  # the answer's request id
    # The job asked the model once, after the ack.
    assert [c for c in env.openai.calls if c.path == "/v1/chat/completions"][-1].time < patch.time


def test_feedback_button_is_recorded_with_an_ephemeral_thanks(env: Env) -> None:
    interaction = env.ask("How many days can I work remotely from abroad?")
    assert env.post(interaction).json() == {"type": 5}
    env.idle()
    (row,) = _original(env, interaction["token"]).json["components"]
    down = row["components"][1]["custom_id"]
    request_id = down.split(":")[3]

    (answer,) = env.discord.webhook_messages(interaction["token"])
    click = env.discord.interaction(3, {"custom_id": down, "component_type": 2}, locale="zh-TW", message=answer)
    response = env.post(click)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == 4
    assert body["data"]["flags"] == 64
    assert body["data"]["content"] == "謝謝你的回饋！"

    recent = env.server.run(env.server.hub.feedback.recent(50))
    entry = next(e for e in recent if e["request_id"] == request_id)
    assert entry["rating"] == "down"
    assert entry["platform"] == "discord"
    assert entry["tenant"] == "community"  # the guild is not mapped: the default tenant

    not_ours = env.post(env.discord.interaction(3, {"custom_id": "something-else", "component_type": 2}))
    assert not_ours.json() == {"type": 6}


def test_long_answer_is_edited_in_then_followed_up_in_parts(env: Env) -> None:
    code = "```python\n" + "\n".join(f"print('step {n}: configure the VPN client')" for n in range(30)) + "\n```"
    words = "Open the company portal and install the VPN client before you travel. " * 22
    reply = f"{words}\n\n{code}\n\n{words}\n\n{words}"
    assert len(reply) > 4000
    env.openai.set_behavior(mode="ok", reply=reply)
    try:
        interaction = env.ask("Long VPN guide please: every step to set up the VPN")
        assert env.post(interaction).json() == {"type": 5}
        env.idle()
    finally:
        env.openai.set_behavior(mode="ok")
    messages = env.discord.webhook_messages(interaction["token"])
    assert len(messages) >= 3
    assert len(env.discord.find("POST", rf"/webhooks/\d+/{interaction['token']}")) == len(messages) - 1
    for message in messages:
        assert 0 < len(message["content"]) <= 2000
        assert message["content"].count("```") % 2 == 0
    assert sum(code in message["content"] for message in messages) == 1  # the code block stays whole
    assert " ".join("\n".join(m["content"] for m in messages).split()) == " ".join(reply.split())
    assert [bool(m["components"]) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert messages[-1]["embeds"][0]["title"] == "Sources"


def test_an_original_not_yet_known_to_discord_is_retried(env: Env) -> None:
    env.discord.original_not_ready = 2
    interaction = env.ask("How do I report a phishing email?")
    assert env.post(interaction).json() == {"type": 5}
    env.idle()
    patches = env.discord.find("PATCH", rf"/webhooks/\d+/{interaction['token']}/messages/@original")
    assert len(patches) == 3
    (answer,) = env.discord.webhook_messages(interaction["token"])
    assert answer["content"].startswith("[gpt-4o")  # FakeOpenAI's reply names the model
    assert answer["components"]


def test_quota_gets_a_short_polite_answer(env: Env) -> None:
    first = env.ask("Where do I find the guest Wi-Fi password?", guild_id=QUOTA_GUILD)
    second = env.ask("How do I book a meeting room?", guild_id=QUOTA_GUILD)
    assert env.post(first).json() == {"type": 5}
    env.idle()
    assert env.post(second).json() == {"type": 5}
    env.idle()
    assert _original(env, first["token"]).json["content"]
    refused = _original(env, second["token"]).json
    assert refused["content"] == polite("quota")
    assert "embeds" not in refused and "components" not in refused


def test_unknown_command_and_bad_body(env: Env) -> None:
    other = env.discord.interaction(2, {"id": "9", "name": "weather", "type": 1})
    response = env.post(other)
    assert response.json()["type"] == 4
    assert response.json()["data"]["flags"] == 64

    body = b"not json"
    timestamp = str(int(time.time()))
    signature = env.key.sign(timestamp.encode() + body).signature.hex()
    bad = env.http.post(
        f"{env.server.url}/discord/interactions",
        content=body,
        headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request"
