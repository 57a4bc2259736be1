"""Portal -> Slack -> portal: /ask and the conversation's SSE stream with the real slack-bolt
against the fake Slack, on memory and Redis, and across two hubs sharing Redis.

A portal asker asks for a person; the answer is the handoff notice (no model call) and the agents'
channel gets the opening message. While handed off, /ask relays to the thread and answers with a
short acknowledgement; agents' replies and the end notice arrive on
GET /conversations/{id}/events, each once, only on the asker's own stream. Resolve (button or
idle timeout) gives the conversation back to the bot. The fake upstream counts every model call.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from core.auth import digest
from tests.browser import browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_handoff_line import AGENT, AGENTS, Clock, agent_reply, in_thread
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import TEAM, send_event, send_form
from tests.test_walls_platforms import wait_until

OWNER_KEY, OTHER_KEY = "ah_portal-owner-key-0000000000", "ah_portal-other-key-0000000000"
VPN = "How do I set up the VPN?"


def hub_config(**extra: Any) -> dict[str, Any]:
    return {
        "clients": [
            {"name": "portal-a", "tenant": "cs", "key_sha256": [digest(OWNER_KEY)]},
            {"name": "portal-b", "tenant": "cs", "key_sha256": [digest(OTHER_KEY)]},
        ],
        "handoff": {"slack_channel": AGENTS},
        **extra,
    }


def settings_for(
    tmp: Path, sample_index: Path, model: FakeOpenAI, slack: FakeSlack, yaml: dict[str, Any] | None = None, **env: str
) -> Any:
    tmp.mkdir(parents=True, exist_ok=True)
    config = write_yaml(tmp / "hub.yaml", hub_config(**(yaml or {})))
    return make_settings(
        tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
        OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000", SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url, **env,
    )  # fmt: skip


@dataclass
class Desk:
    hub: HubServer
    slack: FakeSlack
    model: FakeOpenAI
    agents: HubServer  # the hub that gets Slack's events (another one in the two-hub test)


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"portal-handoff-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with pytest.MonkeyPatch.context() as mp, FakeOpenAI() as model, FakeSlack() as slack:
        mp.setattr("core.http.sse.KEEPALIVE_SEC", 0.3)
        with HubServer(settings_for(tmp, sample_index, model, slack, **env)) as hub:
            hub.hub.handoff.clock = Clock()
            yield Desk(hub, slack, model, hub)


def ask(hub: HubServer, conversation: str, question: str, *, key: str = OWNER_KEY, **headers: str) -> dict[str, Any]:
    response = httpx.post(f"{hub.url}/ask", json={"question": question, "conversation_id": conversation},
                          headers={"X-API-Key": key, "X-AskHub-Client": "portal", **headers}, timeout=20)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Stream:
    """GET /conversations/{id}/events read in a thread: its events and keep-alives as they come."""

    hub: HubServer
    conversation: str
    key: str = OWNER_KEY
    after: str | None = None
    last_event_id: str | None = None  # as a browser's EventSource resumes
    events: list[dict[str, Any]] = field(default_factory=list)
    keepalives: int = 0
    status: int = 0
    ended: bool = False  # the server ended the stream
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_until(lambda: self.status)

    def _read(self) -> None:
        params = {"after": self.after} if self.after else {}
        headers = {"X-API-Key": self.key, **({"Last-Event-ID": self.last_event_id} if self.last_event_id else {})}
        url = f"{self.hub.url}/conversations/{self.conversation}/events"
        with httpx.stream("GET", url, headers=headers, params=params, timeout=20) as response:
            self.status = response.status_code
            block: list[str] = []
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(": keep-alive"):
                    self.keepalives += 1
                elif line:
                    block.append(line)
                elif block:
                    fields = dict(part.split(": ", 1) for part in block)
                    self.events.append({"event": fields["event"], "id": fields.get("id"),
                                        **json.loads(fields["data"])})  # fmt: skip
                    block = []
            self.ended = True

    def texts(self, kind: str = "agent") -> list[str]:
        return [e["text"] for e in self.events if e["event"] == kind]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def opening_ts(desk: Desk, seen: int) -> str:
    def found() -> list[str]:
        return [c.get("ts") or "" for c in desk.slack.calls[seen:] if c.method == "chat.postMessage"
                and c.get("channel") == AGENTS and not c.get("thread_ts")]  # fmt: skip

    wait_until(found)
    return max(ts for ts, m in desk.slack.messages.items() if desk.slack.channel_of.get(ts) == AGENTS
               and not m.get("thread_ts"))  # fmt: skip


def click(desk: Desk, action_id: str, ts: str) -> None:
    payload = {"type": "block_actions", "user": {"id": AGENT, "team_id": TEAM}, "api_app_id": "A0001",
               "container": {"type": "message", "message_ts": ts, "channel_id": AGENTS},
               "trigger_id": uuid.uuid4().hex, "team": {"id": TEAM}, "channel": {"id": AGENTS},
               "message": {"type": "message", "ts": ts}, "response_url": desk.slack.response_url("h"),
               "actions": [{"action_id": action_id, "block_id": "askhub_handoff_actions", "value": "x",
                            "type": "button", "action_ts": f"{time.time():.6f}"}]}  # fmt: skip
    assert send_form(desk.agents, {"payload": json.dumps(payload)}).status_code == 200


def status_text(desk: Desk, ts: str) -> str:
    return json.dumps(desk.slack.messages[ts]["blocks"], ensure_ascii=False)


def idle(desk: Desk) -> None:
    for hub in {id(desk.hub): desk.hub, id(desk.agents): desk.agents}.values():
        hub.run(hub.hub.jobs.idle(), timeout=20)


def start(desk: Desk, conversation: str, text: str = "Can I talk to a person please?", **kw: Any) -> tuple[Any, str]:
    seen = len(desk.slack.calls)
    got = ask(desk.hub, conversation, text, **kw)
    assert got["handoff"]["state"] == "started", got
    return got, opening_ts(desk, seen)


def test_portal_to_slack_and_back_resolved_by_the_button(desk: Desk) -> None:
    conversation = str(uuid.uuid4())
    first = ask(desk.hub, conversation, VPN)  # the bot answers as usual
    assert "handoff" not in first or first["handoff"] is None
    calls = len(desk.model.calls)

    started, ts = start(desk, conversation, "I want to talk to a person, my phone is 0912-345-678")
    assert "person" in started["answer"] and started["model"] == "handoff" and started["sources"] == []
    assert started["handoff"]["events"] == f"/conversations/{conversation}/events"
    blocks = status_text(desk, ts)
    assert "the web portal" in blocks and "VPN" in blocks  # the conversation so far, from the asker's memory
    assert "0912" not in blocks
    calls = len(desk.model.calls)  # the opening's summary may have used the model once

    stream = Stream(desk.hub, conversation)
    try:
        # Customer -> agents: relayed with an acknowledgement, never cached; the same request id once.
        sent = ask(desk.hub, conversation, "my order is 123", **{"X-Request-ID": "portal-msg-1"})
        assert sent["handoff"]["state"] == "relayed" and sent["cached"] is False and "team" in sent["answer"]
        again = ask(desk.hub, conversation, "my order is 123", **{"X-Request-ID": "portal-msg-1"})
        assert again["handoff"]["state"] == "relayed"
        assert [t for t in in_thread(desk, ts) if "my order" in t] == ["*Customer:* my order is 123"]  # type: ignore[arg-type]
        ask(desk.hub, conversation, VPN)  # a question the bot could answer goes to the agents too
        wait_until(lambda: any(VPN in t for t in in_thread(desk, ts)))  # type: ignore[arg-type]
        assert len(desk.model.calls) == calls

        # Agent -> customer: on the stream, once (Slack's retry and the app_mention twin are not shown again).
        reply = agent_reply(ts, "Hi, this is Mei from support")
        assert send_event(desk.agents, reply).status_code == 200
        assert send_event(desk.agents, reply, retry=1).status_code == 200
        twin = {**reply, "event": {**reply["event"], "type": "app_mention"}, "event_id": "Ev" + uuid.uuid4().hex[:10]}
        assert send_event(desk.agents, twin).status_code == 200
        wait_until(lambda: stream.texts())
        assert send_event(desk.agents, agent_reply(ts, "Your order ships today")).status_code == 200
        wait_until(lambda: len(stream.texts()) == 2)
        idle(desk)
        wait_until(lambda: stream.keepalives >= 1)  # the stream stays open with keep-alives
        assert stream.texts() == ["Hi, this is Mei from support", "Your order ships today"]
        assert all(e["id"] for e in stream.events)

        # A reader that reconnects after the first reply gets only what came after it.
        for resumed in (Stream(desk.hub, conversation, after=stream.events[0]["id"]),
                        Stream(desk.hub, conversation, last_event_id=stream.events[0]["id"])):  # fmt: skip
            try:
                wait_until(lambda resumed=resumed: resumed.events)
                assert resumed.texts() == ["Your order ships today"]
            finally:
                resumed.close()

        # Resolve: the end notice arrives on the stream; the bot answers again (a model call).
        click(desk, "handoff_resolve", ts)
        wait_until(lambda: stream.texts("end"))
        assert "closed" in stream.texts("end")[0]
        wait_until(lambda: "Resolved by" in status_text(desk, ts))
    finally:
        stream.close()
    idle(desk)
    back = ask(desk.hub, conversation, "How do I reset my password?")
    assert back.get("handoff") is None and back["model"] != "handoff"
    assert len(desk.model.calls) > calls


def test_another_asker_never_reads_the_conversations_events(desk: Desk) -> None:
    conversation = str(uuid.uuid4())  # the same id, sent by two askers: two conversations
    _, owner_ts = start(desk, conversation)
    _, other_ts = start(desk, conversation, "human please", key=OTHER_KEY)
    assert owner_ts != other_ts
    other = Stream(desk.hub, conversation, key=OTHER_KEY)
    owner = Stream(desk.hub, conversation)
    try:
        assert send_event(desk.agents, agent_reply(owner_ts, "for the owner only")).status_code == 200
        wait_until(lambda: owner.texts())
        assert send_event(desk.agents, agent_reply(other_ts, "for the other asker")).status_code == 200
        wait_until(lambda: other.texts())
        idle(desk)
        assert other.texts() == ["for the other asker"]  # the owner's reply came first, and not here
        assert owner.texts() == ["for the owner only"]
    finally:
        owner.close()
        other.close()
    anonymous = httpx.get(f"{desk.hub.url}/conversations/{conversation}/events", timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "unauthorized"
    too_long = httpx.get(f"{desk.hub.url}/conversations/{'x' * 129}/events", headers={"X-API-Key": OWNER_KEY})
    assert too_long.status_code == 400
    bad_after = httpx.get(f"{desk.hub.url}/conversations/{conversation}/events", params={"after": "x" * 65},
                          headers={"X-API-Key": OWNER_KEY})  # fmt: skip
    assert bad_after.status_code == 400 and bad_after.json()["error"]["type"] == "invalid_request"
    for ts in (owner_ts, other_ts):
        click(desk, "handoff_resolve", ts)
        wait_until(lambda ts=ts: "Resolved by" in status_text(desk, ts))


def test_the_idle_timeout_ends_it_on_the_stream(desk: Desk) -> None:
    conversation = str(uuid.uuid4())
    started, ts = start(desk, conversation, "我想找真人客服")
    assert "真人客服" in started["answer"]
    stream = Stream(desk.hub, conversation)
    try:
        desk.hub.hub.handoff.clock.offset += 1801
        try:
            assert desk.hub.run(desk.hub.hub.handoff.close_idle()) >= 1
        finally:
            desk.hub.hub.handoff.clock.offset = 0
        wait_until(lambda: stream.texts("end"))
        assert "結束" in stream.texts("end")[0]
    finally:
        stream.close()
    wait_until(lambda: "Closed after a quiet spell" in status_text(desk, ts))
    back = ask(desk.hub, conversation, VPN)
    assert back.get("handoff") is None


def test_two_hubs_on_redis_the_reply_handled_by_the_other(
    tmp_path: Path, sample_index: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asker's hub only serves HTTP; the agents' events are handled by the other hub's workers."""
    monkeypatch.setattr("core.http.sse.KEEPALIVE_SEC", 0.3)
    with FakeOpenAI() as model, FakeSlack() as slack:
        web = settings_for(tmp_path / "web", sample_index, model, slack, REDIS_URL=redis_db,
                           yaml={"queue": {"consume": False}})  # fmt: skip
        worker = settings_for(tmp_path / "worker", sample_index, model, slack, REDIS_URL=redis_db)
        with HubServer(web) as front, HubServer(worker) as back:
            desk = Desk(front, slack, model, back)
            conversation = str(uuid.uuid4())
            _, ts = start(desk, conversation)
            calls = len(model.calls)
            stream = Stream(front, conversation)
            try:
                ask(front, conversation, "still there?")
                wait_until(lambda: any("still there?" in t for t in in_thread(desk, ts)))  # type: ignore[arg-type]
                reply = agent_reply(ts, "yes, from the other process")
                assert send_event(front, reply).status_code == 200  # accepted by the web hub, answered by the worker
                assert send_event(back, reply, retry=1).status_code == 200
                wait_until(lambda: stream.texts())
                click(desk, "handoff_resolve", ts)
                wait_until(lambda: stream.texts("end"))
                back.run(back.hub.jobs.idle(), timeout=20)
                assert stream.texts() == ["yes, from the other process"]
                assert len(model.calls) == calls
            finally:
                stream.close()


def test_a_repeated_delivery_is_shown_once_and_a_crashed_one_is_not_lost(desk: Desk) -> None:
    """deliver() again with the same key (a reclaimed job, a second process): one event. A first
    attempt that died after its claim, before the event was written: the repeat writes it."""
    from core.portal.door import PortalCustomer
    from core.portal.events import _hash

    conversation = str(uuid.uuid4())
    _, ts = start(desk, conversation)
    customer = desk.hub.run(desk.hub.hub.handoff.store.by_desk(AGENTS, ts)).customer
    channel = PortalCustomer(desk.hub.hub.portal.events)
    stream = Stream(desk.hub, conversation)
    try:
        for _ in range(3):
            assert desk.hub.run(channel.deliver(customer, "once", key="out:Ev-repeat"))
        died = "out:Ev-died"
        event_id = _hash(customer.address["stream"], died)
        desk.hub.run(desk.hub.hub.backend.set(f"conv:sent:{event_id}", b"sending", 60))  # claimed, then killed
        assert desk.hub.run(channel.deliver(customer, "not lost", key=died))
        wait_until(lambda: len(stream.texts()) == 2)
        assert desk.hub.run(channel.deliver(customer, "not lost", key=died))
        assert send_event(desk.agents, agent_reply(ts, "last")).status_code == 200
        wait_until(lambda: "last" in stream.texts())
        assert stream.texts() == ["once", "not lost", "last"]
    finally:
        stream.close()
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))


@contextlib.contextmanager
def portal_page(desk: Desk, chromium: Browser) -> Iterator[tuple[Page, list[str]]]:
    """The portal in real Chromium, signed in with the owner's key and ready; its page errors."""
    context = chromium.new_context(base_url=desk.hub.url, locale="en-US")
    context.add_init_script(f"sessionStorage.setItem('askhub.token', {json.dumps(OWNER_KEY)})")
    context.set_default_timeout(10_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/")
        expect(page.locator("body.ready")).to_have_count(1)
        yield page, errors
    finally:
        context.close()


@needs_browser
@pytest.mark.parametrize("desk", ["memory"], indirect=True)
def test_the_portal_page_shows_the_agents_reply(desk: Desk, browser: Browser) -> None:  # noqa: F811
    """Real Chromium: the notice, then the agent's reply shown as a person's message, then the end."""
    with portal_page(desk, browser) as (page, errors):
        seen = len(desk.slack.calls)
        box = page.get_by_label("Your question")
        box.fill("Can I talk to a person please?")
        box.press("Enter")
        expect(page.locator(".msg-handoff")).to_contain_text("handing you over to a person")
        ts = opening_ts(desk, seen)
        expect(page.locator("#status")).to_have_text("You are talking with our team")

        box.fill("my parcel never arrived")
        box.press("Enter")
        expect(page.locator(".msg-handoff")).to_have_count(2)
        wait_until(lambda: any("my parcel" in t for t in in_thread(desk, ts)))  # type: ignore[arg-type]
        reply = agent_reply(ts, "Sorry about that — I'm sending a new one today.")
        assert send_event(desk.agents, reply).status_code == 200
        agent = page.locator(".msg-agent")
        expect(agent).to_have_count(1)
        expect(agent).to_contain_text("Support team")
        expect(agent).to_contain_text("I'm sending a new one today.")
        assert send_event(desk.agents, reply, retry=1).status_code == 200

        click(desk, "handoff_resolve", ts)
        expect(page.locator(".msg-notice")).to_contain_text("closed this conversation")
        expect(page.locator("#status")).to_have_text("")
        expect(page.locator(".msg-agent")).to_have_count(1)
        assert errors == []


def test_a_stream_ends_after_its_lifetime(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.http.conversation_routes.STREAM_SEC", 0.5)
    stream = Stream(desk.hub, str(uuid.uuid4()))
    try:
        wait_until(lambda: stream.ended)
        assert stream.status == 200 and stream.events == []
    finally:
        stream.close()


def test_the_second_i_dont_know_in_a_row_hands_off(tmp_path: Path, sample_index: Path) -> None:
    """With on_second_no_answer: the bot's second "I don't know" says a person will answer (JSON and SSE)."""
    with FakeOpenAI() as model, FakeSlack() as slack:
        settings = settings_for(tmp_path, sample_index, model, slack,
                                yaml={"handoff": {"slack_channel": AGENTS, "on_second_no_answer": True}})  # fmt: skip
        with HubServer(settings) as hub:
            desk = Desk(hub, slack, model, hub)
            conversation = str(uuid.uuid4())
            first = ask(hub, conversation, "What is the airspeed velocity of an unladen swallow?")
            assert first["model"] == "none" and first.get("handoff") is None
            seen = len(slack.calls)
            with httpx.stream("POST", f"{hub.url}/ask", headers={"X-API-Key": OWNER_KEY}, timeout=20,
                              json={"question": "What is the airspeed velocity of an unladen swallow?", "conversation_id": conversation,
                                    "stream": True}) as response:  # fmt: skip
                frames = response.read().decode()
            done = json.loads(frames.split("event: done\ndata: ", 1)[1].split("\n", 1)[0])
            assert done.get("handoff"), done
            assert done["handoff"]["state"] == "started" and "person" in done["answer"]
            ts = opening_ts(desk, seen)
            assert "the bot could not answer twice" in status_text(desk, ts)
            relayed = ask(hub, conversation, "hello?")
            assert relayed["handoff"]["state"] == "relayed"


def test_the_stream_says_so_when_the_shared_state_goes_away(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.state import BackendUnavailable

    stream = Stream(desk.hub, str(uuid.uuid4()))
    try:

        async def down(_stream: str) -> list[Any]:
            raise BackendUnavailable("redis: connection refused")

        monkeypatch.setattr(desk.hub.hub.portal.events, "all", down)
        wait_until(lambda: stream.ended)
        assert [e["event"] for e in stream.events] == ["error"]
        assert stream.events[0]["error"]["type"] == "unavailable"
    finally:
        stream.close()
    refused = httpx.get(f"{desk.hub.url}/conversations/x/events", headers={"X-API-Key": OWNER_KEY}, timeout=5)
    assert refused.status_code == 503 and "retry-after" in refused.headers


def test_the_bots_answer_offers_a_person_and_the_offer_starts_one(desk: Desk) -> None:
    """Where a person can be asked for, the bot's answer carries ``handoff_offer``; sending its text
    as the next message (after a 👎) starts the handoff on that conversation."""
    conversation = str(uuid.uuid4())
    first = ask(desk.hub, conversation, VPN)
    assert first.get("handoff") is None and first["handoff_offer"] == {"send": "talk to a person"}
    zh = ask(desk.hub, conversation, "VPN 要怎麼設定？")
    assert zh["handoff_offer"] == {"send": "客服人員"}  # a trigger in the customer's script
    vote = httpx.post(f"{desk.hub.url}/feedback", json={"request_id": first["request_id"], "rating": "down"},
                      headers={"X-API-Key": OWNER_KEY}, timeout=10)  # fmt: skip
    assert vote.status_code == 204
    started, ts = start(desk, conversation, first["handoff_offer"]["send"])
    assert "person" in started["answer"] and "handoff_offer" not in started
    assert "VPN" in status_text(desk, ts)
    relayed = ask(desk.hub, conversation, "still there?")
    assert relayed["handoff"]["state"] == "relayed" and "handoff_offer" not in relayed
    without = httpx.post(f"{desk.hub.url}/ask", json={"question": VPN}, headers={"X-API-Key": OWNER_KEY}, timeout=20)
    assert "handoff_offer" not in without.json()  # no conversation: nothing to hand off
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "Resolved by" in status_text(desk, ts))
    idle(desk)


@needs_browser
@pytest.mark.parametrize("desk", ["memory"], indirect=True)
def test_the_portal_page_offers_a_person_after_a_thumbs_down(desk: Desk, browser: Browser) -> None:  # noqa: F811
    """Real Chromium: 👎 on the bot's answer shows "Talk to a person"; pressing it hands off."""
    with portal_page(desk, browser) as (page, errors):
        box = page.get_by_label("Your question")
        box.fill(VPN)
        box.press("Enter")
        answer = page.locator(".msg-answer").first
        expect(answer.locator(".feedback")).to_have_count(1)
        person = page.get_by_role("button", name="Talk to a person")
        expect(person).to_have_count(0)  # offered after a 👎 only
        answer.get_by_role("button", name="Not helpful").click()
        expect(answer.locator(".feedback-note")).to_have_text("Thanks for the feedback!")
        seen = len(desk.slack.calls)
        person.click()
        expect(page.locator(".msg-handoff")).to_contain_text("handing you over to a person")
        ts = opening_ts(desk, seen)
        expect(page.locator(".msg-question .bubble").last).to_have_text("talk to a person")
        expect(page.locator("#status")).to_have_text("You are talking with our team")
        expect(person).to_be_disabled()
        assert "VPN" in status_text(desk, ts)
        click(desk, "handoff_resolve", ts)
        expect(page.locator(".msg-notice")).to_contain_text("closed this conversation")
        assert errors == []
    idle(desk)


def test_a_door_not_listed_never_hands_off(tmp_path: Path, sample_index: Path) -> None:
    """``handoff.doors`` without the portal: a trigger is a question for the bot, and nothing is offered."""
    with FakeOpenAI() as model, FakeSlack() as slack:
        settings = settings_for(tmp_path, sample_index, model, slack,
                                yaml={"handoff": {"slack_channel": AGENTS, "doors": ["line", "discord"]}})  # fmt: skip
        with HubServer(settings) as hub:
            conversation = str(uuid.uuid4())
            calls = len(model.calls)
            got = ask(hub, conversation, "Can I talk to a person please?")
            assert got.get("handoff") is None and got["model"] != "handoff" and "handoff_offer" not in got
            assert len(model.calls) > calls  # the bot answered it
            assert not [c for c in slack.calls if c.method == "chat.postMessage"]
