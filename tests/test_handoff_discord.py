"""Discord -> Slack -> Discord with the real discord.py (the gateway bot against the fake gateway)
and the real slack-bolt against the fake Slack.

A Discord customer (a DM, a thread the bot started, an `/ask`) asks for a person: the notice is
posted there (no model call) and the agents' channel gets the opening message. While handed off,
the bot stays silent and every message goes into the Slack thread; agents' replies are posted in
the DM or thread through the REST API with an enforced nonce, once. Resolve (button or idle
timeout) gives the conversation back to the bot. The fake upstream counts every model call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.discord_api import MESSAGE_CONTENT_INTENT, Call, FakeDiscord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_handoff_line import AGENTS, Clock, agent_reply
from tests.test_handoff_portal import click, opening_ts, status_text
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import send_event
from tests.test_walls_platforms import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")


@dataclass
class Desk:
    hub: HubServer
    slack: FakeSlack
    model: FakeOpenAI
    discord: FakeDiscord

    @property
    def agents(self) -> HubServer:  # click() and friends post Slack's events here
        return self.hub

    def idle(self) -> None:
        self.hub.run(self.hub.hub.jobs.idle(), timeout=20)

    def said(self, channel: int | str) -> list[str]:
        return [m["content"] for m in self.discord.channel_messages(channel)]

    def in_thread(self, ts: str) -> list[str]:
        return [m["text"] for m in self.slack.messages.values() if m.get("thread_ts") == ts]


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"discord-handoff-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with running(tmp, sample_index, {"slack_channel": AGENTS}, **env) as desk:
        yield desk


@contextlib.contextmanager
def running(
    tmp: Path, sample_index: Path, handoff: dict[str, Any], discord_yaml: dict[str, Any] | None = None, **env: str
) -> Iterator[Desk]:
    """A hub with the Slack desk and the Discord gateway bot, against the fakes."""
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as model,
        FakeSlack() as slack,
        FakeDiscord() as discord,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        section = {"tenants": {str(discord.guild_id): "community"}, "dm_tenant": "default", **(discord_yaml or {})}
        config = write_yaml(tmp / "hub.yaml", {"discord": section, "handoff": handoff})
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url, DISCORD_BOT_TOKEN=discord.token,
            DISCORD_API_URL=discord.api_url, **env,
        )  # fmt: skip
        with HubServer(settings, run_adapters=True) as hub:
            hub.hub.handoff.clock = Clock()
            discord.wait_ready()
            yield Desk(hub, slack, model, discord)


def answered(desk: Desk, channel: int | str) -> list[dict[str, Any]]:
    """The bot's own answers (the last part carries the 👍/👎 buttons)."""
    return [m for m in desk.discord.channel_messages(channel) if m["components"]]


def test_a_dm_customer_to_slack_and_back_resolved_by_the_button(desk: Desk) -> None:
    dm = desk.discord.dm_channel_id
    desk.discord.send_message("How do I request a new laptop?", dm=True)
    desk.discord.wait_until(lambda: answered(desk, dm))
    desk.idle()
    calls, before = len(desk.model.calls), len(desk.said(dm))

    seen = len(desk.slack.calls)
    desk.discord.send_message("I need a human agent please", dm=True)
    ts = opening_ts(desk, seen)  # type: ignore[arg-type]
    desk.discord.wait_until(lambda: len(desk.said(dm)) == before + 1)
    assert "person" in desk.said(dm)[-1]  # the notice, in English, in the DM
    blocks = status_text(desk, ts)  # type: ignore[arg-type]
    assert "Discord" in blocks and "laptop" in blocks  # the conversation so far
    desk.idle()
    calls = len(desk.model.calls)  # the summary may have used the model once

    # Customer -> agents: into the thread, once (a redelivered gateway event too); the bot is silent.
    order = desk.discord.send_message("my order is 123", dm=True)
    wait_until(lambda: "*Customer:* my order is 123" in desk.in_thread(ts))
    desk.discord.dispatch("MESSAGE_CREATE", order)
    image = {"id": "77", "filename": "parcel.png", "size": 1024, "content_type": "image/png",
             "url": "https://cdn.discordapp.com/attachments/1/77/parcel.png",
             "proxy_url": "https://media.discordapp.net/attachments/1/77/parcel.png"}  # fmt: skip
    desk.discord.send_message("", dm=True, attachments=[image])
    wait_until(
        lambda: "*Customer:* [image] https://cdn.discordapp.com/attachments/1/77/parcel.png" in desk.in_thread(ts)
    )
    desk.discord.send_message("How do I request a new laptop?", dm=True)  # the bot could answer: a person does
    wait_until(lambda: any("new laptop" in t for t in desk.in_thread(ts)))
    desk.idle()
    assert desk.in_thread(ts).count("*Customer:* my order is 123") == 1
    assert len(desk.said(dm)) == before + 1 and len(desk.model.calls) == calls

    # Agent -> customer: a message in the DM with an enforced nonce; Slack's retry is not posted again.
    reply = agent_reply(ts, "Hi, Mei here. Checking your order now.")
    assert send_event(desk.hub, reply).status_code == 200
    desk.discord.wait_until(lambda: "Hi, Mei here. Checking your order now." in desk.said(dm))
    assert send_event(desk.hub, reply, retry=1).status_code == 200
    desk.idle()
    (post,) = [c for c in desk.discord.find("POST", rf"/channels/{dm}/messages")
               if (c.json or {}).get("content") == "Hi, Mei here. Checking your order now."]  # fmt: skip
    assert post.json["enforce_nonce"] is True and len(post.json["nonce"]) <= 25
    assert post.json["allowed_mentions"] == {"parse": []}
    assert len(desk.model.calls) == calls

    # Resolve: the customer is told in the DM; the bot answers again.
    click(desk, "handoff_resolve", ts)  # type: ignore[arg-type]
    wait_until(lambda: "Resolved by" in status_text(desk, ts))  # type: ignore[arg-type]
    desk.discord.wait_until(lambda: any("closed this conversation" in t for t in desk.said(dm)))
    desk.idle()
    count = len(answered(desk, dm))
    desk.discord.send_message("How do I request a new laptop?", dm=True)
    desk.discord.wait_until(lambda: len(answered(desk, dm)) > count)
    desk.idle()
    assert len(desk.model.calls) > calls
    desk.discord.send_message("", dm=True, attachments=[image])  # nobody to relay it to: the usual hint
    desk.discord.wait_until(lambda: "I can answer text questions only" in desk.said(dm)[-1])


def test_a_repeated_delivery_is_posted_once(desk: Desk) -> None:
    """The same once-key again: after it was noted sent, nothing is posted; after a crash between
    sending and the note, Discord's enforced nonce returns the first message instead of a second."""
    from core.handoff import Customer
    from core.handoff.store import _hash

    handoff = desk.hub.hub.handoff
    channel = handoff._customers["discord"]
    target = desk.discord.next_id()
    customer = Customer(platform="discord", tenant="default", conversation=str(target),
                        address={"channel": str(target)})  # fmt: skip
    repeats = desk.discord.nonce_repeats
    for _ in range(2):
        assert desk.hub.run(channel.deliver(customer, "only once", key="out:EvRepeat"))
    assert desk.discord.nonce_repeats == repeats  # noted as sent: the repeat is not even posted
    desk.hub.run(desk.hub.hub.backend.set(f"handoff:relay:{_hash('discord:out:EvRepeat')}", b"sending", 60))
    assert desk.hub.run(channel.deliver(customer, "only once", key="out:EvRepeat"))  # the crashed attempt's repeat
    assert desk.said(target) == ["only once"]
    assert desk.discord.nonce_repeats == repeats + 1


def test_a_thread_customer_and_the_idle_timeout(desk: Desk) -> None:
    bot = desk.discord.bot_id
    seen = len(desk.slack.calls)
    question = desk.discord.send_message(f"<@{bot}> 我想找真人客服", mention_bot=True)
    thread = question["id"]  # the bot starts a thread from the message: the thread is the conversation
    ts = opening_ts(desk, seen)  # type: ignore[arg-type]
    desk.discord.wait_until(lambda: desk.said(thread))
    assert "真人客服" in desk.said(thread)[0]
    assert "community" in status_text(desk, ts)  # type: ignore[arg-type]  # the guild's tenant
    desk.discord.send_message(f"<@{bot}> 訂單 555 還沒到", channel_id=thread, mention_bot=True)
    wait_until(lambda: any("訂單 555" in t for t in desk.in_thread(ts)))
    assert send_event(desk.hub, agent_reply(ts, "幫您查詢中")).status_code == 200
    desk.discord.wait_until(lambda: "幫您查詢中" in desk.said(thread))

    desk.idle()  # the relay's job has finished (it notes the last message's time) before time moves
    handoff = desk.hub.hub.handoff
    handoff.clock.offset += 1801
    try:
        assert desk.hub.run(handoff.close_idle()) >= 1
    finally:
        handoff.clock.offset = 0
    desk.discord.wait_until(lambda: any("結束" in t for t in desk.said(thread)))
    wait_until(lambda: "Closed after a quiet spell" in status_text(desk, ts))  # type: ignore[arg-type]
    desk.idle()
    desk.discord.send_message(f"<@{bot}> How do I set up the VPN?", channel_id=thread, mention_bot=True)
    desk.discord.wait_until(lambda: answered(desk, thread))  # the bot is back


def test_the_ask_command_while_handed_off(desk: Desk) -> None:
    def ask(question: str) -> dict[str, Any]:
        data = {"id": "1", "name": "ask", "type": 1, "options": [{"name": "question", "type": 3, "value": question}]}
        interaction = desk.discord.interaction(2, data)
        desk.discord.dispatch("INTERACTION_CREATE", interaction)
        token = interaction["token"]
        patch = desk.discord.wait_for(lambda c: c.method == "PATCH" and c.path.endswith(f"/{token}/messages/@original"))
        return dict(patch.json)

    seen = len(desk.slack.calls)
    calls = len(desk.model.calls)
    started = ask("talk to a person")
    assert "person" in started["content"] and not started.get("components")
    ts = opening_ts(desk, seen)  # type: ignore[arg-type]
    desk.idle()
    calls = len(desk.model.calls)
    relayed = ask("my invoice is wrong")
    assert "team member" in relayed["content"]
    wait_until(lambda: "*Customer:* my invoice is wrong" in desk.in_thread(ts))
    channel = desk.discord.channel_id
    assert send_event(desk.hub, agent_reply(ts, "I fixed the invoice")).status_code == 200
    desk.discord.wait_until(lambda: "I fixed the invoice" in desk.said(channel))
    desk.idle()
    assert len(desk.model.calls) == calls
    click(desk, "handoff_resolve", ts)  # type: ignore[arg-type]
    desk.discord.wait_until(lambda: any("closed this conversation" in t for t in desk.said(channel)))
    desk.idle()  # the close has finished (the conversation is the bot's again)
    assert json.dumps(ask("How do I set up the VPN?")).count("Sources") >= 1  # the bot answers again


def test_the_second_i_dont_know_in_a_row_hands_off_a_dm(tmp_path: Path, sample_index: Path) -> None:
    """With on_second_no_answer: after the bot's second "I don't know", the DM is told a person will
    answer and the agents' channel gets the case."""
    with running(tmp_path, sample_index, {"slack_channel": AGENTS, "on_second_no_answer": True}) as desk:
        dm = desk.discord.dm_channel_id
        question = "What is the airspeed velocity of an unladen swallow?"
        desk.discord.send_message(question, dm=True)
        desk.discord.wait_until(lambda: answered(desk, dm))
        desk.idle()
        assert not any("person" in t for t in desk.said(dm))  # one "I don't know" is not enough
        seen = len(desk.slack.calls)
        desk.discord.send_message(question, dm=True)
        ts = opening_ts(desk, seen)  # type: ignore[arg-type]
        desk.discord.wait_until(lambda: any("person" in t for t in desk.said(dm)))
        assert "the bot could not answer twice" in status_text(desk, ts)  # type: ignore[arg-type]


def press(desk: Desk, custom_id: str, **where: Any) -> tuple[dict[str, Any], Call]:
    """A button click over the gateway, and the bot's response to it."""
    click = desk.discord.interaction(3, {"custom_id": custom_id, "component_type": 2}, **where)
    desk.discord.dispatch("INTERACTION_CREATE", click)
    return click, responded(desk, click)


def responded(desk: Desk, click: dict[str, Any], count: int = 1) -> Call:
    path = f"/interactions/{click['id']}/{click['token']}/callback"
    desk.discord.wait_until(lambda: len(desk.discord.find("POST", path)) >= count)
    return desk.discord.find("POST", path)[count - 1]


def thanks_of(desk: Desk, click: dict[str, Any]) -> dict[str, Any]:
    """The ephemeral message a click was answered with (a press on its button carries it)."""
    (message,) = [m for m in desk.discord.messages.values() if m.get("interaction_token") == click["token"]]
    return dict(message)


def edited(desk: Desk, click: dict[str, Any]) -> dict[str, Any]:
    """What the pressed button's message (the ephemeral thanks) was edited into."""
    token = click["token"]
    patch = desk.discord.wait_for(lambda c: c.method == "PATCH" and c.path.endswith(f"/{token}/messages/@original"))
    return dict(patch.json)


def openings(desk: Desk, seen: int) -> int:
    return len([c for c in desk.slack.calls[seen:] if c.method == "chat.postMessage" and c.get("channel") == AGENTS
                and not c.get("thread_ts")])  # fmt: skip


def test_a_thumbs_down_in_a_dm_offers_a_person_and_one_press_hands_off(desk: Desk) -> None:
    dm = desk.discord.dm_channel_id
    count = len(answered(desk, dm))
    desk.discord.send_message("How do I set up the VPN?", dm=True)
    desk.discord.wait_until(lambda: len(answered(desk, dm)) > count)
    answer = answered(desk, dm)[-1]
    desk.idle()
    up, down = (b["custom_id"] for b in answer["components"][0]["components"])
    _, thanked = press(desk, up, dm=True, message=answer)
    assert thanked.json["data"]["flags"] == 64 and not thanked.json["data"].get("components")  # 👍: no offer
    thumbs_down, thanked = press(desk, down, dm=True, message=answer)
    assert thanked.json["type"] == 4 and thanked.json["data"]["flags"] == 64
    (button,) = thanked.json["data"]["components"][0]["components"]
    assert button["label"] == "Talk to a person"
    assert button["custom_id"] == f"askhub:person:{dm}:{thumbs_down['id']}"

    seen, calls = len(desk.slack.calls), len(desk.model.calls)
    before = len(desk.said(dm))
    thanks = thanks_of(desk, thumbs_down)
    pressed, acked = press(desk, button["custom_id"], dm=True, message=thanks)
    assert acked.json["type"] == 6  # acknowledged at once; the job edits the thanks
    notice = edited(desk, pressed)
    assert "person" in notice["content"] and notice["components"] == []
    ts = opening_ts(desk, seen)  # type: ignore[arg-type]
    assert "VPN" in status_text(desk, ts)  # type: ignore[arg-type]  # the conversation so far

    # Pressed again, or the same press delivered again: the same handoff, one desk message.
    duplicates = metric(desk.hub.url, "hub_adapter_events_total", platform="discord", outcome="duplicate")
    desk.discord.dispatch("INTERACTION_CREATE", pressed)
    responded(desk, pressed, 2)
    wait_until(lambda: metric(desk.hub.url, "hub_adapter_events_total", platform="discord",
                              outcome="duplicate") > duplicates)  # fmt: skip
    again, _ = press(desk, button["custom_id"], dm=True, message=thanks)
    assert "person" in edited(desk, again)["content"]
    desk.idle()
    assert openings(desk, seen) == 1
    assert len(desk.said(dm)) == before  # told on the thanks, nothing posted twice in the DM

    # The DM is handed off: relayed both ways, the bot silent.
    desk.discord.send_message("my order is 4242", dm=True)
    wait_until(lambda: "*Customer:* my order is 4242" in desk.in_thread(ts))
    assert send_event(desk.hub, agent_reply(ts, "Looking at order 4242 now")).status_code == 200
    desk.discord.wait_until(lambda: "Looking at order 4242 now" in desk.said(dm))
    desk.idle()
    assert len(desk.model.calls) <= calls + 1  # at most the opening's summary
    click(desk, "handoff_resolve", ts)  # type: ignore[arg-type]
    desk.discord.wait_until(lambda: any("closed this conversation" in t for t in desk.said(dm)[before:]))
    desk.idle()


def test_the_http_endpoint_offers_a_person_in_the_bots_thread(tmp_path: Path, sample_index: Path) -> None:
    """The interactions endpoint (signed POSTs): a 👎 in the bot's thread is thanked with the
    button, in the clicker's language; a press (and its redelivery) hands the thread off once."""
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    with running(tmp_path, sample_index, {"slack_channel": AGENTS}, DISCORD_PUBLIC_KEY=key.verify_key.encode().hex(),
                 DISCORD_APPLICATION_ID="1300000000000000002") as desk:  # fmt: skip

        def post(payload: dict[str, Any]) -> dict[str, Any]:
            body, stamp = json.dumps(payload).encode(), "1700000000"
            headers = {"Content-Type": "application/json", "X-Signature-Timestamp": stamp,
                       "X-Signature-Ed25519": key.sign(stamp.encode() + body).signature.hex()}  # fmt: skip
            response = httpx.post(f"{desk.hub.url}/discord/interactions", content=body, headers=headers, timeout=10)
            assert response.status_code == 200, response.text
            return dict(response.json())

        bot = desk.discord.bot_id
        question = desk.discord.send_message(f"<@{bot}> How do I set up the VPN?", mention_bot=True)
        thread = question["id"]
        desk.discord.wait_until(lambda: answered(desk, thread))
        answer = answered(desk, thread)[-1]
        desk.idle()
        where = {"channel_id": thread, "channel": dict(desk.discord.channels[thread]), "locale": "zh-TW"}
        down = answer["components"][0]["components"][1]["custom_id"]
        thumbs_down = desk.discord.interaction(3, {"custom_id": down, "component_type": 2}, message=answer, **where)
        thanked = post(thumbs_down)
        assert thanked["data"]["content"] == "謝謝你的回饋！" and thanked["data"]["flags"] == 64
        (button,) = thanked["data"]["components"][0]["components"]
        assert button["label"] == "真人客服" and button["custom_id"] == f"askhub:person:{thread}:{thumbs_down['id']}"
        thanks = {"id": str(desk.discord.next_id()), "channel_id": thread, **thanked["data"]}  # as Discord shows it
        elsewhere = desk.discord.interaction(3, {"custom_id": button["custom_id"], "component_type": 2}, message=thanks)
        assert post(elsewhere) == {"type": 6}  # pressed in another channel than it names: nothing starts

        seen = len(desk.slack.calls)
        pressed = desk.discord.interaction(3, {"custom_id": button["custom_id"], "component_type": 2},
                                           message=thanks, **where)  # fmt: skip
        assert post(pressed) == {"type": 6}
        assert "真人客服" in edited(desk, pressed)["content"]  # the notice, in the clicker's language
        ts = opening_ts(desk, seen)  # type: ignore[arg-type]
        assert post(pressed) == {"type": 6}  # Discord delivered it again
        desk.idle()
        assert openings(desk, seen) == 1
        assert len(desk.discord.find("PATCH", rf"/webhooks/\d+/{pressed['token']}/messages/@original")) == 1
        assert "community" in status_text(desk, ts)  # type: ignore[arg-type]  # the guild's tenant

        desk.discord.send_message(f"<@{bot}> 訂單 777 呢？", channel_id=thread, mention_bot=True)
        wait_until(lambda: any("訂單 777" in t for t in desk.in_thread(ts)))
        assert send_event(desk.hub, agent_reply(ts, "馬上幫您查")).status_code == 200
        desk.discord.wait_until(lambda: "馬上幫您查" in desk.said(thread))


def test_with_the_message_content_intent_a_handed_off_thread_relays_without_a_mention(
    tmp_path: Path, sample_index: Path
) -> None:
    """``discord.message_content: true``: the bot asks for the privileged intent, and once a person
    has a thread (the bot's, or a user's where it was mentioned) every message there goes to them."""
    with running(tmp_path, sample_index, {"slack_channel": AGENTS}, {"message_content": True}) as desk:
        assert desk.discord.identifies[-1]["intents"] & MESSAGE_CONTENT_INTENT
        bot = desk.discord.bot_id
        seen = len(desk.slack.calls)
        question = desk.discord.send_message(f"<@{bot}> talk to a person please", mention_bot=True)
        thread = question["id"]  # the bot's thread
        ts = opening_ts(desk, seen)  # type: ignore[arg-type]
        desk.discord.wait_until(lambda: desk.said(thread))
        desk.discord.send_message("my order is 5150", channel_id=thread)  # no mention
        wait_until(lambda: "*Customer:* my order is 5150" in desk.in_thread(ts))

        # A user's own thread: handed off by a mention, then the rest without one.
        theirs = str(desk.discord.next_id())
        desk.discord.channels[theirs] = {**desk.discord.channels[thread], "id": theirs, "name": "my question",
                                         "owner_id": desk.discord.user["id"]}  # fmt: skip
        desk.discord.dispatch("THREAD_CREATE", {**desk.discord.channels[theirs], "newly_created": True})
        chatter = desk.discord.send_message("anyone know the wifi password?", channel_id=theirs)
        seen = len(desk.slack.calls)
        desk.discord.send_message(f"<@{bot}> I need a human agent", channel_id=theirs, mention_bot=True)
        theirs_ts = opening_ts(desk, seen)  # type: ignore[arg-type]
        desk.discord.wait_until(lambda: any("person" in t for t in desk.said(theirs)))
        desk.discord.send_message("it is about invoice 9001", channel_id=theirs)
        wait_until(lambda: "*Customer:* it is about invoice 9001" in desk.in_thread(theirs_ts))
        desk.idle()
        assert not any("wifi" in t for t in desk.in_thread(theirs_ts))  # before the handoff: not the bot's
        assert not any(c.path.endswith(f"/messages/{chatter['id']}/threads") for c in desk.discord.calls)
