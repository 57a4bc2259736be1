"""The Slack adapter end to end: the real slack-bolt AsyncApp in the real hub, Slack's requests
signed as Slack signs them, and every Web API call going to a local fake Slack (tests/fakes)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import HubServer, make_settings, metric
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM, BOT, USER, CHANNEL = "T0001", "UBOT", "U0001", "C0001"
VPN = "<@UBOT> How do I set up the VPN on my laptop?"


# --- Slack's side -----------------------------------------------------------------------------


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def post(server: HubServer, body: bytes, content_type: str, **sign: Any) -> httpx.Response:
    headers = {"Content-Type": content_type, **signed_headers(body, **sign.pop("signing", {}))}
    headers.update(sign.pop("headers", {}))
    return httpx.post(f"{server.url}/slack/events", content=body, headers=headers, timeout=10)


def send_event(server: HubServer, payload: dict[str, Any], *, retry: int | None = None, **sign: Any) -> httpx.Response:
    headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
    return post(server, json.dumps(payload).encode(), "application/json", headers=headers, **sign)


def send_form(server: HubServer, fields: dict[str, str]) -> httpx.Response:
    return post(server, urlencode(fields).encode(), "application/x-www-form-urlencoded")


def callback(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT, "is_bot": True}],
    }


def mention(ts: str, text: str = VPN, *, user: str = USER, thread_ts: str | None = None) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": CHANNEL,
        "event_ts": ts,
        "team": TEAM,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return callback(event)


def message(
    ts: str, text: str, *, channel: str = CHANNEL, channel_type: str = "channel", **extra: Any
) -> dict[str, Any]:
    event = {"type": "message", "user": USER, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
             "channel_type": channel_type, "team": TEAM, **extra}  # fmt: skip
    return callback(event)


def slash(
    text: str, *, trigger: str = "13345224609.738474920.8088930838d88f008e0", response_url: str = ""
) -> dict[str, str]:
    return {"token": "legacy", "team_id": TEAM, "team_domain": "acme", "channel_id": CHANNEL, "channel_name": "general",
            "user_id": USER, "user_name": "alice", "command": "/ask", "text": text, "api_app_id": "A0001",
            "response_url": response_url or "https://hooks.slack.com/commands/T0001/1/x", "trigger_id": trigger}  # fmt: skip


# --- the hub ----------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Any:
    with FakeSlack() as fake:
        yield fake


def hub_for(tmp_path: Path, sample_index: Path, slack: FakeSlack, **env: str) -> HubServer:
    settings = make_settings(
        tmp_path,
        INDEX_DIR=str(sample_index),
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        **env,
    )
    return HubServer(settings)


@pytest.fixture
def hub(tmp_path: Path, sample_index: Path, slack: FakeSlack) -> Any:
    with hub_for(tmp_path, sample_index, slack) as server:
        yield server


def idle(server: HubServer, timeout: float = 15) -> None:
    """Every accepted event answered (the job queue is empty and no job is running)."""
    server.run(server.hub.jobs.idle(), timeout=timeout)


def spy_requests(server: HubServer) -> list[Any]:
    """The AskRequests the adapter hands to the core (the adapter/core boundary)."""
    seen: list[Any] = []
    original = server.hub.asker.stream

    def stream(request: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(request)
        return original(request, *args, **kwargs)

    server.hub.asker.stream = stream
    return seen


def posted(slack: FakeSlack, *methods: str) -> list[Any]:
    return slack.calls_to(*(methods or ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream",
                                        "chat.stopStream", "chat.postEphemeral", "chat.delete")))  # fmt: skip


def final_blocks(slack: FakeSlack) -> list[dict[str, Any]]:
    """The blocks of the (last) answer message: chat.update's or chat.stopStream's."""
    calls = [c for c in slack.calls_to("chat.update", "chat.stopStream", "chat.postMessage") if c.get("blocks")]
    assert calls, f"no message with blocks; calls: {[c.method for c in slack.calls]}"
    return calls[-1]["blocks"]


def feedback_request_id(blocks: list[dict[str, Any]]) -> str:
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    values = {e["action_id"]: e["value"] for e in actions[0]["elements"]}
    assert set(values) == {"askhub_feedback_up", "askhub_feedback_down"}
    assert values["askhub_feedback_up"] == values["askhub_feedback_down"]
    return values["askhub_feedback_up"]


# --- tests ------------------------------------------------------------------------------------


def test_url_verification(hub: HubServer) -> None:
    r = send_event(hub, {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                         "type": "url_verification"})  # fmt: skip
    assert r.status_code == 200
    assert r.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_mention_answered_in_its_thread_with_sources_and_buttons(hub: HubServer, slack: FakeSlack) -> None:
    slack.streaming = False
    r = send_event(hub, mention("1700000100.000100"))
    assert r.status_code == 200
    idle(hub)

    thinking = slack.calls_to("chat.postMessage")
    assert len(thinking) == 1
    assert thinking[0]["channel"] == CHANNEL and thinking[0]["thread_ts"] == "1700000100.000100"
    assert thinking[0].token == slack.bot_token
    update = slack.calls_to("chat.update")[-1]
    (thinking_ts,) = [ts for ts, m in slack.messages.items() if m.get("thread_ts") == "1700000100.000100"]
    assert update["ts"] == thinking_ts  # the "Thinking…" message became the answer: no second message
    assert slack.messages[thinking_ts]["blocks"] == update["blocks"]
    blocks = update["blocks"]
    sections = [b for b in blocks if b["type"] == "section"]
    assert sections and all(s["text"]["type"] == "mrkdwn" for s in sections)
    assert "FortiClient" in " ".join(s["text"]["text"] for s in sections)
    context = [b for b in blocks if b["type"] == "context"]
    assert len(context) == 1
    sources = [e["text"] for e in context[0]["elements"]]
    assert sources[0].startswith("*[1]* ") and all(" · score 0." in s for s in sources)
    assert any("VPN" in s for s in sources)
    assert len(feedback_request_id(blocks)) == 32
    assert update["text"]  # the notification text beside the blocks


def test_direct_message_answered_with_the_workspace_tenant(
    tmp_path: Path, sample_index: Path, slack: FakeSlack
) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"slack:\n  tenants:\n    {TEAM}: engineering\n  default_tenant: general\n")
    with hub_for(tmp_path, sample_index, slack, HUB_CONFIG=str(config)) as server:
        requests = spy_requests(server)
        r = send_event(server, message("1700000200.000100", "how do I connect to the VPN?", channel="D0001",
                                       channel_type="im"))  # fmt: skip
        assert r.status_code == 200
        idle(server)

    start = slack.calls_to("chat.startStream")
    assert len(start) == 1
    assert start[0]["channel"] == "D0001" and start[0]["thread_ts"] == "1700000200.000100"
    assert start[0]["recipient_user_id"] == USER and start[0]["recipient_team_id"] == TEAM
    (request,) = requests
    assert (request.tenant, request.user, request.platform, request.client) == ("engineering", USER, "slack", "slack")
    assert request.question == "how do I connect to the VPN?"
    assert request.conversation_id == f"slack:{TEAM}:D0001:1700000200.000100"


def test_slash_command_posts_the_question_and_answers_in_its_thread(hub: HubServer, slack: FakeSlack) -> None:
    requests = spy_requests(hub)
    r = send_form(hub, slash("How do I set up the VPN?"))
    assert r.status_code == 200
    assert r.text == ""  # an empty ack: the question and its answer follow as messages
    idle(hub)

    parent = slack.calls_to("chat.postMessage")[0]
    assert parent["channel"] == CHANNEL and "thread_ts" not in parent.body
    assert parent["text"] == f"<@{USER}> asked: How do I set up the VPN?"
    parent_ts = slack.messages[next(iter(slack.messages))]["ts"]
    start = slack.calls_to("chat.startStream")[0]
    assert start["thread_ts"] == parent_ts
    assert feedback_request_id(final_blocks(slack)) == requests[0].request_id
    assert requests[0].conversation_id == f"slack:{TEAM}:{CHANNEL}:{parent_ts}"


def test_slash_command_without_a_question_shows_how_to_ask(hub: HubServer, slack: FakeSlack) -> None:
    r = send_form(hub, slash("   "))
    assert r.status_code == 200
    assert "/ask" in r.text  # shown to the user who typed the command
    idle(hub)
    assert posted(slack) == []


def test_slash_command_where_the_bot_cannot_post_answers_through_response_url(hub: HubServer, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", "not_in_channel")
    r = send_form(hub, slash("How do I set up the VPN?", response_url=slack.response_url("cmd1")))
    assert r.status_code == 200
    idle(hub)
    (answer,) = slack.responses
    assert answer["response_type"] == "ephemeral"
    assert any(b["type"] == "actions" for b in answer["blocks"])
    assert slack.calls_to("chat.startStream") == []


def test_a_slow_model_is_acknowledged_before_it_answers(tmp_path: Path, sample_index: Path, slack: FakeSlack) -> None:
    with FakeOpenAI(api_key="sk-test") as upstream:
        upstream.set_behavior(mode="ok", delay=3)
        with hub_for(tmp_path, sample_index, slack, OPENAI_API_KEY="sk-test",
                     OPENAI_BASE_URL=upstream.base_url) as server:  # fmt: skip
            r = send_event(server, mention("1700000300.000100"))
            assert r.status_code == 200
            # Acknowledged before the model answered (it takes 3 s): no answer is posted yet.
            assert not slack.calls_to("chat.stopStream")
            idle(server)
    stop = [c for c in slack.calls_to("chat.stopStream") if c.get("blocks")]
    assert len(stop) == 1
    assert upstream.calls_for("gpt-4o-mini")


def test_the_same_event_delivered_three_times_is_answered_once(hub: HubServer, slack: FakeSlack) -> None:
    payload = mention("1700000400.000100")
    duplicates = metric(hub.url, "hub_adapter_events_total", platform="slack", outcome="duplicate")
    for retry in (None, 1, 2):
        assert send_event(hub, payload, retry=retry).status_code == 200
    idle(hub)
    assert send_event(hub, payload, retry=3).status_code == 200  # after the answer, too
    idle(hub)
    assert len(slack.calls_to("chat.startStream")) == 1
    assert len([c for c in slack.calls_to("chat.stopStream") if c.get("blocks")]) == 1
    assert metric(hub.url, "hub_adapter_events_total", platform="slack", outcome="duplicate") == duplicates + 3


def test_a_retry_after_a_failed_first_attempt_is_answered(hub: HubServer, slack: FakeSlack) -> None:
    slack.fail("chat.startStream", "internal_error")
    slack.fail("chat.postMessage", "internal_error")
    payload = mention("1700000500.000100")
    assert send_event(hub, payload).status_code == 200
    idle(hub)
    assert not [c for c in slack.calls_to("chat.stopStream", "chat.update")]
    slack.heal()
    assert send_event(hub, payload, retry=1).status_code == 200
    idle(hub)
    assert len([c for c in slack.calls_to("chat.stopStream") if c.get("blocks")]) == 1


def test_bad_and_stale_signatures_are_rejected(hub: HubServer, slack: FakeSlack) -> None:
    payload = json.dumps(mention("1700000600.000100")).encode()
    cases = [
        {"signing": {"secret": "not-the-secret"}},
        {"signing": {"timestamp": int(time.time()) - 310}},  # a replay after the 5-minute window
        {"signing": {"timestamp": int(time.time()) + 400}},  # from the future
        {"headers": {"X-Slack-Signature": "v0=" + "0" * 64}},
        {"headers": {"X-Slack-Request-Timestamp": "yesterday"}},
    ]
    for case in cases:
        r = post(hub, payload, "application/json", **case)
        assert r.status_code == 401, case
        assert r.json()["error"]["type"] == "unauthorized"
        assert r.json()["error"]["message"]
    unsigned = httpx.post(f"{hub.url}/slack/events", content=payload, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.json()["error"]["type"] == "unauthorized"
    idle(hub)
    assert slack.calls == []


def test_a_feedback_click_is_recorded_and_acknowledged(hub: HubServer, slack: FakeSlack) -> None:
    before = metric(hub.url, "hub_feedback_total", platform="slack", rating="up")
    send_event(hub, mention("1700000700.000100"))
    idle(hub)
    request_id = feedback_request_id(final_blocks(slack))
    answer_ts = slack.calls_to("chat.startStream")[0]  # the answer's message
    stream_ts = next(ts for ts, m in slack.messages.items() if m.get("thread_ts") == answer_ts["thread_ts"])
    click = {
        "type": "block_actions",
        "user": {"id": "U0002", "username": "bob", "team_id": TEAM},
        "api_app_id": "A0001",
        "token": "legacy",
        "container": {
            "type": "message",
            "message_ts": stream_ts,
            "channel_id": CHANNEL,
            "is_ephemeral": False,
            "thread_ts": "1700000700.000100",
        },
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": TEAM, "domain": "acme"},
        "channel": {"id": CHANNEL, "name": "general"},
        "message": {"type": "message", "ts": stream_ts, "thread_ts": "1700000700.000100", "user": BOT},
        "response_url": slack.response_url("click"),
        "actions": [
            {
                "action_id": "askhub_feedback_up",
                "block_id": "askhub_feedback",
                "value": request_id,
                "type": "button",
                "action_ts": "1700000710.000200",
                "text": {"type": "plain_text", "text": "👍", "emoji": True},
            }
        ],
    }
    r = send_form(hub, {"payload": json.dumps(click)})
    assert r.status_code == 200
    idle(hub)

    votes = hub.run(hub.hub.feedback.recent())
    assert [(v["request_id"], v["rating"], v["platform"]) for v in votes] == [(request_id, "up", "slack")]
    assert "U0002" not in json.dumps(votes)  # the user is kept as a fingerprint only
    assert metric(hub.url, "hub_feedback_total", platform="slack", rating="up") == before + 1
    (thanks,) = slack.calls_to("chat.postEphemeral")
    assert thanks["user"] == "U0002" and thanks["channel"] == CHANNEL
    assert thanks["thread_ts"] == "1700000700.000100" and "Thanks" in thanks["text"]


def test_a_rate_limited_user_is_told_so_privately(tmp_path: Path, sample_index: Path, slack: FakeSlack) -> None:
    with hub_for(tmp_path, sample_index, slack, RATE_LIMIT_MAX_PER_USER="1") as server:
        send_event(server, mention("1700000800.000100"))
        idle(server)
        r = send_event(server, mention("1700000801.000100", "<@UBOT> and what about expenses?"))
        assert r.status_code == 200
        idle(server)
    assert len(slack.calls_to("chat.startStream")) == 1  # only the first question got an answer message
    (note,) = slack.calls_to("chat.postEphemeral")
    assert note["user"] == USER and note["channel"] == CHANNEL and note["thread_ts"] == "1700000801.000100"
    assert "try again" in note["text"] and "Traceback" not in note["text"]


def test_the_model_down_is_a_polite_message_in_the_thread(tmp_path: Path, sample_index: Path, slack: FakeSlack) -> None:
    slack.streaming = False
    config = tmp_path / "hub.yaml"  # the event waits for the model this long, then apologises
    config.write_text("resilience:\n  patient_sec: 1\n  retries: 0\n", encoding="utf-8")
    with FakeOpenAI(api_key="sk-test") as upstream:
        upstream.set_behavior(mode="error", status=503)
        with hub_for(tmp_path, sample_index, slack, OPENAI_API_KEY="sk-test",
                     OPENAI_BASE_URL=upstream.base_url, HUB_CONFIG=str(config)) as server:  # fmt: skip
            send_event(server, mention("1700000850.000100"))
            idle(server)
    # As the progress message's final text, or (when the failure came within the first moments,
    # before any progress was shown) as a message of its own: either way one message, in the thread.
    (shown,) = [m for m in slack.messages.values() if m.get("thread_ts") == "1700000850.000100"]
    assert "try again" in shown["text"] and "Error" not in shown["text"] and "Thinking" not in shown["text"]
    assert slack.calls_to("chat.postEphemeral") == []


def test_long_answers_are_split_into_sections_within_slack_limits(
    tmp_path: Path, sample_index: Path, slack: FakeSlack
) -> None:
    paragraphs = [f"**Step {n}.** " + " ".join(["Connect FortiClient to the gateway and approve MFA."] * 12)
                  for n in range(1, 16)]  # fmt: skip
    reply = "\n\n".join(paragraphs)
    assert len(reply) > 9000
    slack.streaming = False
    with FakeOpenAI(api_key="sk-test") as upstream:
        upstream.set_behavior(mode="ok", reply=reply)
        with hub_for(tmp_path, sample_index, slack, OPENAI_API_KEY="sk-test",
                     OPENAI_BASE_URL=upstream.base_url) as server:  # fmt: skip
            send_event(server, mention("1700000900.000100"))
            idle(server)
    blocks = slack.calls_to("chat.update")[-1]["blocks"]
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) >= 4
    assert all(len(s) <= 3000 for s in sections)
    assert len(blocks) <= 50
    joined = " ".join(sections)
    assert all(f"*Step {n}.*" in joined for n in range(1, 16))  # **bold** became mrkdwn *bold*
    assert "**" not in joined
    assert sum(s.count("Connect FortiClient") for s in sections) == 15 * 12  # nothing lost or doubled


def test_native_streaming_when_the_workspace_supports_it(hub: HubServer, slack: FakeSlack) -> None:
    send_event(hub, mention("1700001000.000100"))
    idle(hub)
    (start,) = slack.calls_to("chat.startStream")
    assert start["channel"] == CHANNEL and start["thread_ts"] == "1700001000.000100"
    appended = slack.calls_to("chat.appendStream")
    (stop,) = slack.calls_to("chat.stopStream")
    ts = slack.messages[next(ts for ts, m in slack.messages.items() if m.get("thread_ts"))]["ts"]
    assert all(c["ts"] == ts for c in [*appended, stop])
    streamed = "".join(c.get("markdown_text", "") for c in [*appended, stop])
    assert "FortiClient" in streamed
    assert [b["type"] for b in stop["blocks"]] == ["context", "actions"]
    assert slack.calls_to("chat.update") == [] and slack.calls_to("chat.postMessage") == []


def test_chat_update_fallback_when_streaming_is_not_supported(hub: HubServer, slack: FakeSlack) -> None:
    slack.streaming = False
    slack.stream_error = "not_allowed"
    send_event(hub, mention("1700001100.000100"))
    idle(hub)
    assert len(slack.calls_to("chat.startStream")) == 1
    (thinking,) = slack.calls_to("chat.postMessage")
    assert "Thinking" in thinking["text"]
    final = slack.calls_to("chat.update")[-1]
    assert final["ts"] == next(iter(slack.messages))
    assert [b["type"] for b in final["blocks"]][-2:] == ["context", "actions"]

    send_event(hub, mention("1700001200.000100", "<@UBOT> where do I find the expense policy?"))
    idle(hub)
    assert len(slack.calls_to("chat.startStream")) == 1  # the team's verdict is remembered
    assert len(slack.calls_to("chat.postMessage")) == 2


def test_bot_edited_deleted_and_unaddressed_messages_are_ignored(hub: HubServer, slack: FakeSlack) -> None:
    ignored = metric(hub.url, "hub_adapter_events_total", platform="slack", outcome="ignored")
    events = [
        message("1700001300.000100", "hello from a bot", bot_id="B0BOT", subtype="bot_message"),
        message("1700001300.000200", "I am a bot without a subtype", bot_id="B0OTHER"),
        message("1700001300.000300", "the bot's own message", user=BOT),
        callback({"type": "message", "subtype": "message_changed", "channel": "D0001", "channel_type": "im",
                  "ts": "1700001300.000400", "hidden": True,
                  "message": {"type": "message", "user": USER, "text": "edited VPN question", "ts": "1700001299.000100"}}),
        callback({"type": "message", "subtype": "message_deleted", "channel": "D0001", "channel_type": "im",
                  "ts": "1700001300.000500", "hidden": True, "deleted_ts": "1700001299.000100"}),
        message("1700001300.000600", "<@U0001> has joined the channel", subtype="channel_join"),
        message("1700001300.000700", "a channel message not for the bot"),
        message("1700001300.000800", "a reply in someone else's thread", thread_ts="1600000000.000100"),
        callback({"type": "reaction_added", "user": USER, "reaction": "thumbsup", "event_ts": "1700001300.000900",
                  "item": {"type": "message", "channel": CHANNEL, "ts": "1700001300.000700"}}),
        message("1700001301.000100", "a DM from a bot", channel="D0001", channel_type="im", bot_id="B0OTHER"),
    ]  # fmt: skip
    for payload in events:
        assert send_event(hub, payload).status_code == 200
    idle(hub)
    assert posted(slack) == []
    assert metric(hub.url, "hub_adapter_events_total", platform="slack", outcome="ignored") >= ignored + 8


def test_a_follow_up_in_the_thread_is_answered_with_the_threads_conversation(hub: HubServer, slack: FakeSlack) -> None:
    requests = spy_requests(hub)
    parent = "1700001400.000100"
    send_event(hub, mention(parent))
    idle(hub)
    # The follow-up, without a mention: Slack sends it as a message event in the thread.
    send_event(hub, message("1700001410.000100", "and on Linux?", thread_ts=parent, parent_user_id=USER))
    # A mention inside the thread arrives twice (app_mention + message): answered once.
    again = "<@UBOT> does it work on my phone?"
    send_event(hub, mention("1700001420.000100", again, thread_ts=parent))
    send_event(hub, message("1700001420.000100", again, thread_ts=parent))
    # A reply addressed to a colleague is not for the bot.
    send_event(hub, message("1700001430.000100", "<@U0009> can you check this?", thread_ts=parent))
    idle(hub)

    assert requests[0].question == "How do I set up the VPN on my laptop?"
    assert sorted(r.question for r in requests[1:]) == ["and on Linux?", "does it work on my phone?"]
    assert {r.conversation_id for r in requests} == {f"slack:{TEAM}:{CHANNEL}:{parent}"}
    starts = slack.calls_to("chat.startStream")
    assert [s["thread_ts"] for s in starts] == [parent] * 3


def test_a_question_without_knowledge_gets_a_polite_answer_without_sources(hub: HubServer, slack: FakeSlack) -> None:
    slack.streaming = False
    send_event(hub, mention("1700001500.000100", "<@UBOT> what is the airspeed velocity of an unladen swallow?"))
    idle(hub)
    blocks = slack.calls_to("chat.update")[-1]["blocks"]
    assert [b["type"] for b in blocks] == ["section", "actions"]  # no sources to show; 👍/👎 still count
    assert "could not find" in blocks[0]["text"]["text"]


def test_two_processes_sharing_redis_answer_a_redelivery_once_and_share_threads(
    tmp_path: Path, sample_index: Path, slack: FakeSlack, redis_db: str
) -> None:
    """Slack may retry to another replica: the ledger and the thread records live in Redis."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = hub_for(tmp_path / "a", sample_index, slack, REDIS_URL=redis_db)
    second = hub_for(tmp_path / "b", sample_index, slack, REDIS_URL=redis_db)
    with first, second:
        requests = spy_requests(second)
        payload = mention("1700001600.000100")
        assert send_event(first, payload).status_code == 200
        idle(first)
        assert send_event(second, payload, retry=1).status_code == 200
        # The follow-up reaches the other replica, which knows the bot answers that thread.
        send_event(second, message("1700001610.000100", "and on Linux?", thread_ts="1700001600.000100"))
        idle(second)
    assert [s["thread_ts"] for s in slack.calls_to("chat.startStream")] == ["1700001600.000100"] * 2
    assert [r.question for r in requests] == ["and on Linux?"]
