"""The "every path" rule as one test (issue #26, item 2): a question carrying personal data is
asked at every door — /ask (and its follow-up), /v1 with the ``kb`` model, Slack, Discord, and a
LINE customer who is then handed to the agents in Slack — with a cloud chat model, a cloud
embeddings provider (``EMBEDDINGS=openai:``), a local model and ``handoff.personal_data:
redacted``; then every request the fakes recorded going out — cloud chat and embeddings, Slack,
LINE, Discord — is read, and none holds the personal data in any spelling. Only the local model
may see it."""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from core.pii import json_strings
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_line_adapter import SECRET as LINE_SECRET
from tests.test_line_adapter import TOKEN, new_user, source, text_event
from tests.test_line_adapter import post as line_post
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import TEAM, callback, mention, send_event, send_form
from tests.test_walls_platforms import wait_until

KEY = "ah_pii-every-path-key-0000000"
AGENTS, AGENT = "C0AGENTS", "U0AGENT"
LOCAL_REPLY = "LOCAL: 特休依年資計算，請洽人資部。"
# The values, as digits (any spelling folds to these) and as text.
DIGITS = ("0912345678", "912345678", "123456789", "4111111111111111")
TEXTS = ("A123456789", "wang.xm", "王小明")


CHINESE = dict(zip("〇零一二三四五六七八九", "00123456789", strict=True))


def digits_of(text: str) -> str:
    """Every digit in text, whatever its script — read here independently of core/pii.py."""
    out = []
    for ch in text:
        value = CHINESE.get(ch) or (str(unicodedata.digit(ch)) if unicodedata.digit(ch, None) is not None else "")
        out.append(value)
    return "".join(out)


def leaks(value: Any) -> list[str]:
    """The personal data in one recorded request body, in any spelling used above."""
    found = []
    for _where, text in json_strings(value):
        folded = unicodedata.normalize("NFKC", text)
        digits = digits_of(folded)
        found += [d for d in DIGITS if d in digits] + [t for t in TEXTS if t.lower() in folded.lower()]
    return found


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as cloud,
        FakeOpenAI() as local,
        FakeSlack() as slack,
        FakeLineAPI(access_token=TOKEN) as line,
        FakeDiscord() as discord,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield {"cloud": cloud, "local": local, "slack": slack, "line": line, "discord": discord}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, Any]) -> Iterator[tuple[HubServer, SigningKey]]:
    tmp = tmp_path_factory.mktemp("pii-every-path")
    key = SigningKey.generate()
    config = write_yaml(tmp / "hub.yaml", {"resilience": {"retries": 0}, "line": {"tenant": "cs"},
                                           "handoff": {"slack_channel": AGENTS, "personal_data": "redacted"}})  # fmt: skip
    settings = make_settings(
        tmp, HUB_CONFIG=str(config), HUB_API_KEYS=f"svc:hr:{KEY}", EMBEDDINGS="openai:text-embedding-3-small",
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=fakes["cloud"].base_url, LOCAL_LLM_BASE_URL=fakes["local"].base_url,
        LOCAL_LLM_MODEL="local-llm", RATE_LIMIT_MAX_PER_USER="10000",
        SLACK_BOT_TOKEN=fakes["slack"].bot_token, SLACK_SIGNING_SECRET=SLACK_SECRET,
        SLACK_API_URL=fakes["slack"].api_url, LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_URL=fakes["line"].url, DISCORD_PUBLIC_KEY=key.verify_key.encode().hex(),
        DISCORD_APPLICATION_ID=str(fakes["discord"].application_id), DISCORD_API_URL=fakes["discord"].api_url,
    )  # fmt: skip
    with HubServer(settings) as server:  # the index is built through the cloud embedder: documents only
        yield server, key


def idle(server: HubServer) -> None:
    server.run(server.hub.jobs.idle(), timeout=30)


def discord_post(server: HubServer, key: SigningKey, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Signature-Timestamp": stamp,
               "X-Signature-Ed25519": key.sign(stamp.encode() + body).signature.hex()}  # fmt: skip
    return httpx.post(f"{server.url}/discord/interactions", content=body, headers=headers, timeout=10)


def test_personal_data_asked_at_every_door_reaches_no_outgoing_request(
    hub: tuple[HubServer, SigningKey], fakes: dict[str, Any]
) -> None:
    server, key = hub
    cloud, local, slack, line, discord = (fakes[k] for k in ("cloud", "local", "slack", "line", "discord"))
    cloud.reset()
    local.set_behavior("local-llm", reply=LOCAL_REPLY)
    auth = {"X-API-Key": KEY}

    # /ask: Chinese numerals and a written-out e-mail; then a follow-up (its earlier turn is personal).
    for question in ("我的手機 零九一二三四五六七八，信箱 wang.xm(at)example.com，請問特休有幾天?", "那病假呢?"):
        got = httpx.post(f"{server.url}/ask", json={"question": question, "conversation_id": "every-path"},
                         headers=auth, timeout=30)  # fmt: skip
        assert got.status_code == 200 and got.json()["model"] == "local-llm", got.text
    # /v1 with the kb model: the personal data is a JSON number and the user.
    body = {"model": "kb", "messages": [{"role": "user", "content": "How many days of annual leave do I get?"}],
            "metadata": {"card": 4111111111111111}, "user": 886912345678}  # fmt: skip
    got = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                     timeout=30)  # fmt: skip
    assert got.status_code == 200 and got.json()["model"] == "local-llm", got.text
    # Slack: an employee's question with a national ID.
    ts = f"{time.time():.6f}"
    assert send_event(server, mention(ts, "<@UBOT> 我的身分證 A123456789 遺失了，特休怎麼算?")).status_code == 200
    # Discord: the /ask command with a phone.
    data = {"id": "1", "name": "ask", "type": 1,
            "options": [{"name": "question", "type": 3, "value": "my phone is 0912-345-678, how many leave days?"}]}  # fmt: skip
    assert discord_post(server, key, discord.interaction(2, data)).status_code == 200
    # LINE: a customer's question with a phone, then a person; a message with the ID and an e-mail
    # goes to the agents' channel; the agent answers, resolves and opens "Save as verified answer".
    customer = new_user()
    for text in ("我的手機 0912 345 678，退貨運費誰付?", "我要找真人客服"):
        assert line_post(server, [text_event(line, text, source(customer))]).status_code == 200
        idle(server)
    (opening,) = wait_until(lambda: [c for c in slack.calls_to("chat.postMessage") if c.get("channel") == AGENTS
                                     and not c.get("thread_ts")])  # fmt: skip
    desk_ts = max(t for t, m in slack.messages.items() if slack.channel_of.get(t) == AGENTS and not m.get("thread_ts"))
    sent = text_event(line, "身分證 A123456789，信箱 王小明@example.com，電話 〇九一二-三四五-六七八", source(customer))
    assert line_post(server, [sent]).status_code == 200
    wait_until(lambda: [c for c in slack.calls_to("chat.postMessage") if c.get("thread_ts") == desk_ts])
    reply = {"type": "message", "user": AGENT, "text": "好的，已為您處理退貨。", "ts": f"{time.time():.6f}",
             "thread_ts": desk_ts, "channel": AGENTS, "channel_type": "channel", "team": TEAM}  # fmt: skip
    assert send_event(server, callback(reply)).status_code == 200
    wait_until(lambda: [d for d in line.deliveries() if d.to == customer and d.via == "push"])
    for action in ("handoff_resolve", "handoff_save_verified"):
        click = {"type": "block_actions", "user": {"id": AGENT, "team_id": TEAM}, "api_app_id": "A0001",
                 "container": {"type": "message", "message_ts": desk_ts, "channel_id": AGENTS},
                 "trigger_id": uuid.uuid4().hex, "team": {"id": TEAM}, "channel": {"id": AGENTS},
                 "message": {"type": "message", "ts": desk_ts},
                 "actions": [{"action_id": action, "block_id": "askhub_handoff_actions", "value": "x",
                              "type": "button", "action_ts": f"{time.time():.6f}"}]}  # fmt: skip
        assert send_form(server, {"payload": json.dumps(click)}).status_code == 200
        idle(server)
    wait_until(lambda: slack.calls_to("views.open"))
    wait_until(lambda: [c for c in discord.calls if c.method == "PATCH"])
    idle(server)

    # Every door was reached and answered, so the walk below reads real traffic.
    assert local.calls, "the local model answered nothing"
    assert opening and slack.calls_to("views.open")
    assert [d for d in line.deliveries() if d.to == customer]
    outgoing = {
        "cloud chat": [c.json for c in cloud.calls if c.path.endswith("/chat/completions")],
        "cloud embeddings": [c.json for c in cloud.calls if c.path.endswith("/embeddings")],
        "Slack": [c.body for c in slack.calls],
        "LINE": [c.json for c in line.calls],
        "Discord": [c.json for c in discord.calls],
    }
    assert outgoing["cloud embeddings"] or outgoing["cloud chat"], "no cloud traffic at all: the walk proves nothing"
    found = {where: sorted({leak for request in requests for leak in leaks(request)})
             for where, requests in outgoing.items()}  # fmt: skip
    assert found == {where: [] for where in outgoing}, f"raw personal data went out: {found}"
