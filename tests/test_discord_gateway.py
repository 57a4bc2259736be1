"""The Discord gateway bot: discord.py itself, connected to a fake Discord gateway and REST API.

The hub runs the bot in-process (``run_adapters=True``, as ``python -m core serve`` does) with
only ``DISCORD_BOT_TOKEN`` and ``DISCORD_API_URL`` set: discord.py logs in over the fake REST,
finds the gateway through ``GET /gateway/bot`` and connects to the fake websocket. The model is
FakeOpenAI (streaming), so answers are deterministic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.schema import AskRequest
from tests.conftest import ROOT, SAMPLE_KB, HubServer, free_port, make_settings, metric
from tests.fakes.discord_api import MESSAGE_CONTENT_INTENT, FakeDiscord
from tests.fakes.openai_upstream import FakeOpenAI

GUILD_MESSAGES, DIRECT_MESSAGES = 1 << 9, 1 << 12
# discord.py imports audioop (voice) at import time; Python 3.11 warns about its future removal.
pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")


@dataclass
class Env:
    server: HubServer
    discord: FakeDiscord
    openai: FakeOpenAI
    asked: list[AskRequest] = field(default_factory=list)

    @property
    def bot(self) -> int:
        return self.discord.bot_id

    def answers(self, channel_id: int | str) -> list[dict[str, Any]]:
        """The bot's finished answers in a channel (their last message carries the buttons)."""
        return [m for m in self.discord.channel_messages(channel_id) if m["components"]]

    def wait_answers(self, channel_id: int | str, count: int) -> list[dict[str, Any]]:
        self.discord.wait_until(lambda: len(self.answers(channel_id)) >= count)
        self.server.run(self.server.hub.jobs.idle(), timeout=20)
        return self.answers(channel_id)

    def request_for(self, question: str) -> AskRequest:
        return next(r for r in self.asked if r.question == question)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[Env]:
    with pytest.MonkeyPatch.context() as mp, FakeDiscord() as discord, FakeOpenAI(api_key="sk-test") as openai:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        tmp = tmp_path_factory.mktemp("discord-gateway")
        config = tmp / "hub.yaml"
        config.write_text(
            f"discord:\n  dm_tenant: internal\n  tenants:\n    '{discord.guild_id}': community\n",
            encoding="utf-8",
        )
        settings = make_settings(
            tmp,
            INDEX_DIR=str(sample_index),
            HUB_CONFIG=str(config),
            DISCORD_BOT_TOKEN=discord.token,
            DISCORD_API_URL=discord.api_url,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=openai.base_url,
            RATE_LIMIT_MAX_PER_USER="100",
        )
        with HubServer(settings, run_adapters=True) as server:
            env = Env(server, discord, openai)
            asker = server.hub.asker
            stream = asker.stream

            def recording(request: AskRequest, principal: Any = None) -> Any:
                env.asked.append(request)
                return stream(request, principal)

            asker.stream = recording
            discord.wait_ready()
            yield env


def test_the_bot_logs_in_registers_ask_and_identifies_without_privileged_intents(env: Env) -> None:
    calls = [f"{c.method} {c.path}" for c in env.discord.calls]
    assert "GET /users/@me" in calls
    assert "GET /gateway/bot" in calls  # the gateway URL comes from the REST API
    (sync,) = env.discord.find("PUT", rf"/applications/{env.discord.application_id}/commands")
    (command,) = sync.json
    assert command["name"] == "ask"
    assert [(o["name"], o["type"], o["required"]) for o in command["options"]] == [("question", 3, True)]
    (identify,) = env.discord.identifies
    assert identify["intents"] & GUILD_MESSAGES and identify["intents"] & DIRECT_MESSAGES
    assert not identify["intents"] & MESSAGE_CONTENT_INTENT


def test_a_mention_is_answered_in_a_new_thread(env: Env) -> None:
    question = env.discord.send_message(f"<@{env.bot}> How do I set up the VPN on Windows?", mention_bot=True)
    thread_id = question["id"]  # a thread started from a message has that message's id
    (answer,) = env.wait_answers(thread_id, 1)

    (start,) = env.discord.find("POST", rf"/channels/{env.discord.channel_id}/messages/{question['id']}/threads")
    assert start.json["name"] == "How do I set up the VPN on Windows?"
    assert env.discord.find("POST", rf"/channels/{thread_id}/typing")  # typing while it works
    assert answer["content"].startswith("[gpt-4o")
    (embed,) = answer["embeds"]
    assert embed["title"] == "Sources" and embed["fields"][0]["name"].startswith("1. ")
    ids = [b["custom_id"] for b in answer["components"][0]["components"]]
    assert [i.rsplit(":", 1)[0] for i in ids] == ["askhub:fb:up", "askhub:fb:down"]

    request = env.request_for("How do I set up the VPN on Windows?")  # the mention is not the question
    assert request.conversation_id == f"discord:{thread_id}"
    assert request.tenant == "community"  # the guild's tenant
    assert request.user == env.discord.user["id"]
    assert (request.platform, request.client) == ("discord", "discord")
    assert ids[0].endswith(request.request_id)


def test_follow_ups_in_the_bots_thread_share_its_conversation(env: Env) -> None:
    first = env.discord.send_message(f"<@{env.bot}> Who approves remote work abroad?", mention_bot=True)
    thread = first["id"]
    env.wait_answers(thread, 1)

    # In the thread, a mention is a follow-up: answered there, no new thread.
    second = env.discord.send_message(f"<@{env.bot}> And for how many days?", channel_id=thread, mention_bot=True)
    env.wait_answers(thread, 2)
    # Without a mention it is a follow-up too, when Discord lets the bot read it ...
    third = env.discord.send_message("What about working from Japan?", channel_id=thread, withhold=False)
    env.wait_answers(thread, 3)
    conversations = {
        env.request_for(q).conversation_id
        for q in ("Who approves remote work abroad?", "And for how many days?", "What about working from Japan?")
    }
    assert conversations == {f"discord:{thread}"}
    for follow_up in (second, third):
        assert not env.discord.find("POST", rf"/channels/\d+/messages/{follow_up['id']}/threads")

    # ... and without the message-content intent Discord withholds its text: ask (once) for a mention.
    env.discord.send_message("thanks! one more thing", channel_id=thread)
    hint = env.discord.wait_until(
        lambda: [m for m in env.discord.channel_messages(thread) if f"<@{env.bot}>" in m["content"]]
    )
    env.discord.send_message("hello?", channel_id=thread)
    env.discord.send_message(f"<@{env.bot}> Can I claim the flight?", channel_id=thread, mention_bot=True)
    env.wait_answers(thread, 4)
    assert [m for m in env.discord.channel_messages(thread) if f"<@{env.bot}>" in m["content"]] == hint


def test_a_dm_is_answered_in_the_dm(env: Env) -> None:
    before = len(env.answers(env.discord.dm_channel_id))
    env.discord.send_message("How do I request a new laptop?", dm=True)
    answer = env.wait_answers(env.discord.dm_channel_id, before + 1)[-1]
    assert answer["content"].startswith("[gpt-4o")
    assert answer["embeds"][0]["title"] == "Sources"
    request = env.request_for("How do I request a new laptop?")
    assert request.conversation_id == f"discord:{env.discord.dm_channel_id}"
    assert request.tenant == "internal"  # DMs go to discord.dm_tenant
    assert not env.discord.find("POST", rf"/channels/{env.discord.dm_channel_id}/messages/\d+/threads")


def test_a_long_answer_is_split_into_messages_that_each_fit(env: Env) -> None:
    code = "```bash\n" + "\n".join(f"vpnctl profile add office-{n} --gateway vpn.example.com" for n in range(25))
    code += "\n```"
    words = "Install the VPN client from the company portal, then sign in with your badge account. " * 20
    reply = f"{words}\n\n{code}\n\n{words}\n\n{words}"
    assert len(reply) > 5000
    env.openai.set_behavior(mode="ok", reply=reply)
    try:
        question = env.discord.send_message(f"<@{env.bot}> Give me the full VPN profile guide", mention_bot=True)
        env.wait_answers(question["id"], 1)
    finally:
        env.openai.set_behavior(mode="ok")
    messages = env.discord.channel_messages(question["id"])
    assert len(messages) >= 3
    for message in messages:
        assert 0 < len(message["content"]) <= 2000
        assert message["content"].count("```") % 2 == 0  # no code block left open
    assert sum(code in m["content"] for m in messages) == 1  # the code block is whole, in one message
    assert " ".join("\n".join(m["content"] for m in messages).split()) == " ".join(reply.split())
    assert [bool(m["components"]) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert [bool(m["embeds"]) for m in messages] == [False] * (len(messages) - 1) + [True]
    # The first message showed the answer growing (posted with the progress mark), then was edited.
    first = env.discord.find("POST", rf"/channels/{question['id']}/messages")[0]
    assert first.json["content"].endswith(" …")
    assert env.discord.find("PATCH", rf"/channels/{question['id']}/messages/{messages[0]['id']}")


def test_the_bot_ignores_its_own_messages_and_other_bots(env: Env) -> None:
    ignored = metric(env.server.url, "hub_adapter_events_total", platform="discord", outcome="ignored")
    other_bot = env.discord.make_user(1_300_000_000_000_000_200, "otherbot", bot=True)
    own = env.discord.send_message(f"<@{env.bot}> I am the bot", author=env.discord.bot_user, mention_bot=True)
    bots = env.discord.send_message(f"<@{env.bot}> beep boop", author=other_bot, mention_bot=True)
    chatter = env.discord.send_message("lunch anyone?")  # neither a mention nor a DM
    before = len(env.answers(env.discord.dm_channel_id))
    env.discord.send_message("Where is the printer guide?", dm=True)
    env.wait_answers(env.discord.dm_channel_id, before + 1)

    for message in (own, bots, chatter):
        assert not env.discord.find("POST", rf"/channels/\d+/messages/{message['id']}/threads")
        assert not env.discord.channel_messages(message["id"])
    assert not [r for r in env.asked if r.question in ("I am the bot", "beep boop", "lunch anyone?")]
    after = metric(env.server.url, "hub_adapter_events_total", platform="discord", outcome="ignored")
    assert after - ignored == 3


def test_ask_command_and_feedback_button_over_the_gateway(env: Env) -> None:
    data = {"id": "1", "name": "ask", "type": 1, "options": [{"name": "question", "type": 3, "value": "VPN on macOS?"}]}
    interaction = env.discord.interaction(2, data)
    env.discord.dispatch("INTERACTION_CREATE", interaction)
    token = interaction["token"]
    defer = env.discord.wait_for(lambda c: c.path == f"/interactions/{interaction['id']}/{token}/callback")
    assert defer.json["type"] == 5
    patch = env.discord.wait_for(lambda c: c.method == "PATCH" and c.path.endswith(f"/{token}/messages/@original"))
    assert patch.json["content"].startswith("[gpt-4o")
    assert patch.json["embeds"][0]["title"] == "Sources"
    up = patch.json["components"][0]["components"][0]["custom_id"]

    (answer,) = env.discord.webhook_messages(token)
    click = env.discord.interaction(3, {"custom_id": up, "component_type": 2}, message=answer)
    env.discord.dispatch("INTERACTION_CREATE", click)
    thanks = env.discord.wait_for(lambda c: c.path == f"/interactions/{click['id']}/{click['token']}/callback")
    assert thanks.json["type"] == 4
    assert thanks.json["data"]["flags"] == 64
    request_id = up.rsplit(":", 1)[1]
    recent = env.server.run(env.server.hub.feedback.recent(50))
    entry = next(e for e in recent if e["request_id"] == request_id)
    assert (entry["rating"], entry["platform"], entry["tenant"]) == ("up", "discord", "community")


def test_python_m_adapters_discord_runs_the_bot_on_its_own(tmp_path: Path, sample_index: Path) -> None:
    """The Procfile's process: DISCORD_GATEWAY_URL set, /ask registered in the dev guild, SIGTERM stops it."""
    with FakeDiscord() as discord:
        config = tmp_path / "hub.yaml"
        config.write_text(f"discord:\n  dev_guild_id: '{discord.guild_id}'\n", encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NO_PROXY": "127.0.0.1,localhost",
            "KB_DIR": str(SAMPLE_KB),
            "INDEX_DIR": str(sample_index),
            "EMBEDDINGS": "hash",
            "LOG_FILE": "",
            "HUB_CONFIG": str(config),
            "DISCORD_BOT_TOKEN": discord.token,
            "DISCORD_API_URL": discord.api_url,
            "DISCORD_GATEWAY_URL": discord.gateway_url,
        }
        log = tmp_path / "bot.out"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "adapters.discord"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            try:
                discord.wait_ready(timeout=30)
                path = rf"/applications/{discord.application_id}/guilds/{discord.guild_id}/commands"
                assert discord.find("PUT", path)
                assert not discord.find("PUT", rf"/applications/{discord.application_id}/commands")
                assert not discord.find("GET", r"/gateway/bot")  # DISCORD_GATEWAY_URL was used
                discord.send_message("How do I connect to the guest Wi-Fi?", dm=True)
                discord.wait_until(
                    lambda: any(m["components"] for m in discord.channel_messages(discord.dm_channel_id))
                )
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(15) == 0, log.read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)


@pytest.mark.parametrize("command", [("adapters.discord",), ("core", "serve")])
def test_with_redis_the_bot_answers_a_dm_a_mention_and_ask(
    command: tuple[str, ...], tmp_path: Path, sample_index: Path, redis_db: str
) -> None:
    """With REDIS_URL the durable queue must have readers for every kind the bot submits, from the start."""
    with FakeDiscord() as discord:
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NO_PROXY": "127.0.0.1,localhost",
            "KB_DIR": str(SAMPLE_KB),
            "INDEX_DIR": str(sample_index),
            "EMBEDDINGS": "hash",
            "LOG_FILE": "",
            "REDIS_URL": redis_db,
            "PORT": str(port),
            "DISCORD_BOT_TOKEN": discord.token,
            "DISCORD_API_URL": discord.api_url,
            "DISCORD_GATEWAY_URL": discord.gateway_url,
        }
        log = tmp_path / "bot.out"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            try:
                discord.wait_ready(timeout=30)
                discord.send_message("How do I connect to the guest Wi-Fi?", dm=True)
                mention = discord.send_message(f"<@{discord.bot_id}> How do I set up the VPN?", mention_bot=True)
                data = {"id": "1", "name": "ask", "type": 1,
                        "options": [{"name": "question", "type": 3, "value": "VPN on macOS?"}]}  # fmt: skip
                interaction = discord.interaction(2, data)
                discord.dispatch("INTERACTION_CREATE", interaction)

                def answered() -> bool:
                    return (
                        any(m["components"] for m in discord.channel_messages(discord.dm_channel_id))
                        and any(m["components"] for m in discord.channel_messages(mention["id"]))
                        and bool(discord.webhook_messages(interaction["token"]))
                    )

                discord.wait_until(answered, timeout=30)
                proc.send_signal(signal.SIGTERM)
                # uvicorn re-raises the signal once it has shut down cleanly
                assert proc.wait(15) in (0, -signal.SIGTERM), log.read_text()
                assert "ResponseError" not in log.read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
