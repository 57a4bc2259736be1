"""Verified answers hold no raw personal data and only agents make them (issue #26, item 4).

A LINE customer (tenant ``cs``, which reads ``public`` only) is handed to the agents in Slack with
the real line-bot-sdk and slack-bolt against the fakes, on memory and Redis. The agent's reply
repeats the customer's number and address; "Save as verified answer" offers it redacted, and an
unchanged save stores it redacted. Only ``handoff.agents`` (a user id and a user group) may Take,
Resolve, open the form or submit it; a submission naming a collection the customer cannot read
(``internal``) is refused; and a verified answer is redacted when it is served, whatever it holds.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.auth import digest
from core.kb.embedders import HashEmbedder
from core.kb.ingest import ingest
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_handoff_line import (
    AGENT,
    AGENTS,
    Desk,
    agent_reply,
    click,
    idle,
    in_thread,
    pushed_to,
    replied,
    say,
    status_text,
)
from tests.test_handoff_line import opening as opening_of
from tests.test_line_adapter import SECRET as LINE_SECRET
from tests.test_line_adapter import TOKEN, new_user
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import TEAM, send_event, send_form
from tests.test_walls_platforms import wait_until

LEAD, STRANGER, GROUP = "U0LEAD", "U0STRANGER", "S0AGENTS"  # LEAD is an agent through the user group
ADMIN = "ah_verified-pii-admin-key-0000"
PHONE, EMAIL, PIN = "0912-345-678", "wang.xm@example.com", "4821"
QUESTION = "退貨的運費誰付?"
REPLY = f"王先生您好，您的號碼 {PHONE} 已登記，確認信寄到 {EMAIL}。退貨運費由本公司負擔，請於七天內寄回。"
RAW = ("0912", "345-678", "wang.xm", "example.com")


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"verified-pii-{request.param}")
    for folder, name, text in (
        ("internal", "bonus.md", "# Year-end bonus\n\nThe year-end bonus is calculated from the rating.\n"),
        ("public", "returns.md", "# 退貨\n\n退貨請在訂單頁面選擇退貨，運費由本公司負擔。\n"),
    ):
        (tmp / "kb" / folder).mkdir(parents=True)
        (tmp / "kb" / folder / name).write_text(text, encoding="utf-8")
    folders = {name: tmp / "kb" / name for name in ("internal", "public")}
    asyncio.run(ingest(folders, tmp / "index", HashEmbedder(), chunk_chars=600, exact_max=5000))
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    config = write_yaml(tmp / "hub.yaml", {
        "collections": {"internal": {"path": "internal"}, "public": {"path": "public"}},
        "tenants": {"cs": {"collections": ["public"]}, "hr": {"collections": ["internal", "public"]}},
        "clients": [{"name": "ops", "tenant": "hr", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]}],
        "line": {"tenant": "cs"},
        "handoff": {"slack_channel": AGENTS, "agents": [AGENT, GROUP]},
        "verified": {"file": str(tmp / "verified.json")},
    })  # fmt: skip
    with (
        pytest.MonkeyPatch.context() as mp,
        FakeOpenAI() as model,
        FakeSlack() as slack,
        FakeLineAPI(access_token=TOKEN) as line,
    ):
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        slack.usergroups[GROUP] = [LEAD]
        settings = make_settings(
            tmp, KB_DIR=str(tmp / "kb"), INDEX_DIR=str(tmp / "index"), HUB_CONFIG=str(config),
            OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=model.base_url, RATE_LIMIT_MAX_PER_USER="1000",
            SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url,
            LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_URL=line.url, **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield Desk(hub, slack, line, model)


def handed_off(desk: Desk, question: str = QUESTION) -> tuple[str, str]:
    """A new LINE customer asks ``question``, then asks for a person: (their id, the desk thread)."""
    user = new_user()
    asked = say(desk, user, question)
    wait_until(lambda: replied(desk, asked))
    idle(desk)
    seen = len(desk.slack.calls)
    sent = say(desk, user, "我要找真人")
    _, ts = opening_of(desk, seen)
    wait_until(lambda: replied(desk, sent))
    idle(desk)
    return user, ts


def resolved_with_reply(desk: Desk, text: str = REPLY) -> tuple[str, str]:
    user, ts = handed_off(desk)
    assert send_event(desk.hub, agent_reply(ts, text)).status_code == 200
    wait_until(lambda: pushed_to(desk, user))
    click(desk, "handoff_resolve", ts)
    wait_until(lambda: "handoff_save_verified" in status_text(desk, ts))
    return user, ts


def open_form(desk: Desk, ts: str, user: str = AGENT) -> dict[str, Any] | None:
    """Click "Save as verified answer": the form Slack was asked to open (None: no form)."""
    before = len(desk.slack.calls_to("views.open"))
    ephemerals = len(desk.slack.calls_to("chat.postEphemeral"))
    click(desk, "handoff_save_verified", ts, user=user)
    wait_until(lambda: len(desk.slack.calls_to("views.open")) > before
               or len(desk.slack.calls_to("chat.postEphemeral")) > ephemerals)  # fmt: skip
    opened = desk.slack.calls_to("views.open")[before:]
    if not opened:
        return None
    view = opened[0]["view"]
    return view if isinstance(view, dict) else json.loads(view)


def submit(desk: Desk, view: dict[str, Any], *, answer: str, collection: str, user: str = AGENT) -> httpx.Response:
    submission = {
        "type": "view_submission", "team": {"id": TEAM}, "user": {"id": user, "name": "mei"},
        "api_app_id": "A0001", "trigger_id": uuid.uuid4().hex,
        "view": {**view, "id": "V" + uuid.uuid4().hex[:8], "hash": "h1", "state": {"values": {
            "question": {"value": {"type": "plain_text_input", "value": QUESTION}},
            "answer": {"value": {"type": "plain_text_input", "value": answer}},
            "collection": {"value": {"type": "static_select", "selected_option": {"value": collection}}},
        }}},
    }  # fmt: skip
    return send_form(desk.hub, {"payload": json.dumps(submission)})


def verified(desk: Desk) -> list[Any]:
    return desk.hub.run(desk.hub.hub.verified.list())


def retire_all(desk: Desk) -> None:
    for item in verified(desk):
        desk.hub.run(desk.hub.hub.verified.retire(item.id))


def assert_no_raw(text: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} in {text!r}"


def test_the_form_offers_the_reply_redacted_and_an_unchanged_save_stores_it_redacted(desk: Desk) -> None:
    retire_all(desk)
    _, ts = resolved_with_reply(desk)
    view = open_form(desk, ts)
    assert view is not None
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
    assert_no_raw(initial["answer"])
    assert "[PHONE]" in initial["answer"] and "退貨運費由本公司負擔" in initial["answer"]
    # Nor does the shared state keep the reply raw (it outlives the handoff, on Redis too).
    store = desk.hub.hub.handoff.store
    handoff = desk.hub.run(store.by_desk(AGENTS, ts))
    assert_no_raw(desk.hub.run(store.fact(handoff.id, "reply"))["text"])
    assert submit(desk, view, answer=initial["answer"], collection="public").status_code == 200
    wait_until(lambda: any("Saved as a verified answer" in t for t in in_thread(desk, ts)))
    idle(desk)
    (saved,) = [v for v in verified(desk) if not v.retired]
    assert_no_raw(saved.answer)
    # Another LINE customer asking the same question is served it, with nobody's data in it.
    other = new_user()
    asked = say(desk, other, QUESTION)
    (served,) = wait_until(lambda: replied(desk, asked))
    assert "退貨運費由本公司負擔" in served
    assert_no_raw(served)


def test_a_changed_answer_is_stored_as_written(desk: Desk) -> None:
    retire_all(desk)
    _, ts = resolved_with_reply(desk)
    view = open_form(desk, ts)
    assert view is not None
    written = "退貨運費由本公司負擔，請撥客服專線 0800-000-123 (免付費)。"
    assert submit(desk, view, answer=written, collection="public").status_code == 200
    wait_until(lambda: any("Saved as a verified answer" in t for t in in_thread(desk, ts)))
    (saved,) = [v for v in verified(desk) if not v.retired]
    assert saved.answer == written  # the agent's own words, kept (and redacted when served)


def test_verified_answers_are_redacted_when_served(desk: Desk) -> None:
    """An answer that holds personal data — saved before this rule, or typed by an admin — is
    redacted on its way to the asker."""
    retire_all(desk)
    raw = f"VERIFIED: call {PHONE} or mail {EMAIL}; your new PIN is {PIN}."
    response = httpx.post(f"{desk.hub.url}/admin/verified", headers={"X-API-Key": ADMIN}, timeout=10,
                          json={"question": "How do I reset my returns PIN?", "answer": raw, "collection": "public",
                                "verified_by": "ops"})  # fmt: skip
    assert response.status_code == 201, response.text
    got = httpx.post(f"{desk.hub.url}/ask", json={"question": "How do I reset my returns PIN?"},
                     headers={"X-API-Key": ADMIN}, timeout=10).json()  # fmt: skip
    assert got["model"] == "verified"
    assert_no_raw(got["answer"])
    assert "[PHONE]" in got["answer"] and "[EMAIL]" in got["answer"]


def test_only_agents_may_take_resolve_and_open_the_save_form(desk: Desk) -> None:
    _, ts = handed_off(desk)
    ephemerals = len(desk.slack.calls_to("chat.postEphemeral"))
    click(desk, "handoff_take", ts, user=STRANGER)
    click(desk, "handoff_resolve", ts, user=STRANGER)
    wait_until(lambda: len(desk.slack.calls_to("chat.postEphemeral")) >= ephemerals + 2)
    idle(desk)
    assert "Taken by" not in status_text(desk, ts) and "Resolved by" not in status_text(desk, ts)
    told = desk.slack.calls_to("chat.postEphemeral")[ephemerals:]
    assert {c.get("user") for c in told} == {STRANGER}
    # A member of the agents' user group may.
    click(desk, "handoff_take", ts, user=LEAD)
    wait_until(lambda: f"Taken by <@{LEAD}>" in status_text(desk, ts))
    click(desk, "handoff_resolve", ts, user=LEAD)
    wait_until(lambda: "handoff_save_verified" in status_text(desk, ts))
    assert open_form(desk, ts, user=STRANGER) is None
    assert open_form(desk, ts, user=LEAD) is not None


def test_a_save_submitted_by_someone_else_is_refused(desk: Desk) -> None:
    retire_all(desk)
    _, ts = resolved_with_reply(desk)
    view = open_form(desk, ts)
    assert view is not None
    response = submit(desk, view, answer="FORGED: the refund is 10x", collection="public", user=STRANGER)
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    idle(desk)
    assert not [v for v in verified(desk) if not v.retired]


def test_a_save_into_a_collection_the_customer_cannot_read_is_refused(desk: Desk) -> None:
    """A signed submission naming ``internal`` for a ``cs`` handoff would change what employees get."""
    retire_all(desk)
    _, ts = resolved_with_reply(desk)
    view = open_form(desk, ts)
    assert view is not None
    offered = [o["value"] for b in view["blocks"] if b["block_id"] == "collection" for o in b["element"]["options"]]
    assert offered == ["public"]
    response = submit(desk, view, answer="FORGED: the bonus is 10 months", collection="internal")
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors", "errors": {"collection": response.json()["errors"]
                                                                       ["collection"]}}  # fmt: skip
    idle(desk)
    assert not [v for v in verified(desk) if not v.retired]
    got = httpx.post(f"{desk.hub.url}/ask", json={"question": QUESTION}, headers={"X-API-Key": ADMIN}, timeout=10)
    assert "FORGED" not in got.text
