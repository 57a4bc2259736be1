"""Discord presentation and translation: message and embed limits, tenants, mentions, signatures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from adapters.discord import render, translate, transport
from core.config import ConfigError
from core.errors import Unauthorized
from core.schema import AskResult, Source, Usage
from tests.conftest import ROOT, make_settings


def result(answer: str, sources: list[Source], request_id: str = "a" * 32) -> AskResult:
    return AskResult("q", answer, sources, "gpt-4o-mini", False, Usage(), request_id)


def embed_length(embed: dict) -> int:
    return len(embed["title"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])


def test_sources_embed_stays_within_discords_limits() -> None:
    many = [Source(f"doc-{n}", "T" * 400, "word " * 600, 0.5) for n in range(40)]
    embed = render.sources_embed(many)
    assert embed is not None
    assert embed["title"] == "Sources"
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in embed["fields"])
    assert embed_length(embed) <= 6000
    assert [f["name"].split(".")[0] for f in embed["fields"]] == [str(n) for n in range(1, len(embed["fields"]) + 1)]

    few = render.sources_embed([Source("vpn.md#1", "VPN setup", "Open FortiClient.", 0.4567)])
    assert few is not None
    assert few["fields"] == [{"name": "1. VPN setup", "value": "score 0.46 · Open FortiClient.", "inline": False}]
    assert render.sources_embed([]) is None


def test_answer_messages_fit_and_the_last_carries_sources_and_buttons() -> None:
    code = "```js\n" + "console.log('hello world');\n" * 40 + "```"
    answer = ("A sentence about the travel policy. " * 50) + "\n\n" + code + "\n\n" + ("More words here. " * 100)
    messages = render.answer_messages(result(answer, [Source("t.md#1", "Travel", "text", 0.3)]))
    assert len(messages) >= 3
    assert all(len(m["content"]) <= 2000 and m["allowed_mentions"] == {"parse": []} for m in messages)
    assert sum(code in m["content"] for m in messages) == 1
    assert all("embeds" not in m and "components" not in m for m in messages[:-1])
    (row,) = messages[-1]["components"]
    assert [b["emoji"]["name"] for b in row["components"]] == ["👍", "👎"]
    assert [translate.parse_feedback(b["custom_id"]) for b in row["components"]] == [
        ("a" * 32, "up"),
        ("a" * 32, "down"),
    ]

    no_sources = render.answer_messages(result("Sorry, I could not find anything.", []))
    assert len(no_sources) == 1 and "embeds" not in no_sources[0]

    runaway = render.parts("word " * 10_000)
    assert len(runaway) == render.MAX_MESSAGES and runaway[-1].endswith("…")


def test_progress_thread_name_and_thanks() -> None:
    assert render.progress("x" * 5000).endswith("…") and len(render.progress("x" * 5000)) <= 2000
    assert render.progress("From the knowledge base:") == "From the knowledge base: …"
    assert len(render.thread_name("How " * 100)) <= 100
    assert render.thread_name("   ") == "Question"
    assert render.thanks("zh-TW") == "謝謝你的回饋！" and render.thanks("en-US") == "Thanks for the feedback!"


def test_tenant_mentions_and_feedback_ids(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("discord:\n  default_tenant: community\n  tenants:\n    '42': sales\n", encoding="utf-8")
    settings = make_settings(tmp_path, HUB_CONFIG=str(config))
    assert translate.tenant_for(settings, 42) == "sales"
    assert translate.tenant_for(settings, "7") == "community"
    assert translate.tenant_for(settings, None) is None, "with a map, a DM needs discord.dm_tenant"

    assert translate.strip_mentions("<@99> how do I  print? cc <@!5>", 99) == "how do I print? cc <@!5>"
    assert translate.strip_mentions("<@!99>", 99) == ""

    custom_id = translate.feedback_custom_id("f" * 32, "down")
    assert len(custom_id) <= 100
    assert translate.parse_feedback(custom_id) == ("f" * 32, "down")
    assert translate.parse_feedback("askhub:fb:meh:abc") is None
    assert translate.parse_feedback("") is None

    request = translate.ask_request(
        settings, question="q", user_id=5, guild_id=42, channel_id=9, conversation="9", request_id="r"
    )
    assert (request.tenant, request.user, request.conversation_id, request.platform) == (
        "sales",
        "5",
        "discord:9",
        "discord",
    )
    assert translate.conversation_for_command(9, True, 5) == "9"
    assert translate.conversation_for_command(9, False, 5) == "9:5"


def test_signature_verification() -> None:
    signing = SigningKey.generate()
    key = transport.verify_key(signing.verify_key.encode().hex())
    body, timestamp = b'{"type":1}', "1700000000"
    good = signing.sign(timestamp.encode() + body).signature.hex()
    transport.verify(key, good, timestamp, body)
    for signature, stamp, payload in ((good, "1700000001", body), (good, timestamp, b"{}"), ("00", timestamp, body),
                                      ("xyz", timestamp, body), (None, timestamp, body), (good, None, body)):  # fmt: skip
        with pytest.raises(Unauthorized):
            transport.verify(key, signature, stamp, payload)
    with pytest.raises(ConfigError, match="DISCORD_PUBLIC_KEY"):
        transport.verify_key("not-hex")


def test_the_package_does_not_shadow_the_discord_library() -> None:
    """`adapters/discord` is a package named like the library: `import discord` must still be discord.py."""
    code = (
        "import adapters.discord.gateway as g, discord, discord.ext\n"
        "assert g.discord is discord and discord.__file__.endswith('site-packages/discord/__init__.py'), discord.__file__\n"
        "assert hasattr(discord, 'Client') and discord.__version__.startswith('2.')\n"
        "import adapters.discord as a; assert a.__name__ == 'adapters.discord' and a is not discord\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_conversation_a_thumbs_down_hands_off_is_where_the_bot_answered() -> None:
    """The 👎's answer names the conversation the bot keyed there (translate.answer_conversation)."""
    guild = {"guild_id": "9", "member": {"user": {"id": "7"}}}
    thread = {**guild, "channel_id": "55", "channel": {"id": "55", "type": 11}, "message": {"id": "60"}}
    assert translate.feedback_conversation(thread) == "55"
    ask_here = {**guild, "channel_id": "50", "channel": {"id": "50", "type": 0},
                "message": {"id": "61", "webhook_id": "1", "interaction_metadata": {"id": "3", "type": 2}}}  # fmt: skip
    assert translate.feedback_conversation(ask_here) == "50:7"  # an /ask answer: the asker's own
    in_place = {**guild, "channel_id": "50", "channel": {"id": "50", "type": 0},
                "message": {"id": "62", "message_reference": {"message_id": "44"}}}  # fmt: skip
    assert translate.feedback_conversation(in_place) == "50:44"  # answered in place: the question's
    dm = {"channel_id": "12", "channel": {"id": "12", "type": 1}, "user": {"id": "7"}, "message": {"id": "63"}}
    assert translate.feedback_conversation(dm) == "12"
    dm_ask = {**dm, "message": {"id": "64", "interaction_metadata": {"id": "3", "type": 2}}}
    assert translate.feedback_conversation(dm_ask) == "12:7"
    unknown = {**guild, "channel_id": "50", "channel": {"id": "50", "type": 0}, "message": {"id": "65"}}
    assert translate.feedback_conversation(unknown) is None


def test_a_person_button_is_understood_only_in_the_channel_it_names() -> None:
    custom_id = translate.person_custom_id("1300000000000000011:1300000000000000100", "1300000000000000222")
    assert len(custom_id) <= 100
    assert translate.parse_person(custom_id, "1300000000000000011") == (
        "1300000000000000011:1300000000000000100",
        "1300000000000000222",
    )
    assert translate.parse_person(custom_id, "1300000000000000099") is None  # another channel
    assert translate.parse_person(translate.person_custom_id("55", "66"), 55) == ("55", "66")
    assert translate.parse_person("askhub:fb:down:abc", "55") is None
    response = render.thanks_response("zh-TW", person=custom_id)
    (button,) = response["data"]["components"][0]["components"]
    assert button == {"type": 2, "style": 1, "label": "真人客服", "custom_id": custom_id}
    assert "components" not in render.thanks_response("en-US")["data"]
