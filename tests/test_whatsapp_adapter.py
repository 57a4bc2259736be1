"""The WhatsApp door: plain httpx (the adapter's client) against a fake WhatsApp Cloud API.

Webhooks are signed as Meta signs them (``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
raw body with the app secret>``) and posted to the real hub on loopback; the fake records every
message the hub sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.whatsapp import render
from core import logs
from core.schema import AskResult, Source, Usage
from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.whatsapp_api import ACCESS_TOKEN, FakeWhatsApp
from tests.fakes.whatsapp_webhook import (
    APP_SECRET,
    VERIFY_TOKEN,
    button,
    message,
    new_user,
    payload,
    post,
    sign,
    whatsapp_env,
)

VPN_QUESTION = "How do I connect to the VPN with FortiClient?"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWhatsApp]:
    with FakeWhatsApp() as wa:
        yield wa


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeWhatsApp) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("whatsapp")
    config = write_yaml(tmp / "hub.yaml", {"whatsapp": {"tenant": "cs", "window_template": "askhub_reopen"}})
    settings = make_settings(tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), **whatsapp_env(fake))
    with HubServer(settings) as server:
        yield server


@pytest.fixture
def hub(module_hub: HubServer, fake: FakeWhatsApp) -> HubServer:
    fake.reset()
    return module_hub


def idle(server: HubServer) -> None:
    server.run(server.hub.jobs.idle(), timeout=20)


# --- verification and signatures -------------------------------------------------------------------


def test_the_verify_challenge_is_echoed_only_for_the_verify_token(hub: HubServer) -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = httpx.get(f"{hub.url}/whatsapp/webhook", params=good)
    assert response.status_code == 200 and response.text == "1158201444"
    wrong = httpx.get(f"{hub.url}/whatsapp/webhook", params={**good, "hub.verify_token": "guess"})
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "forbidden"
    assert "1158201444" not in wrong.text


def test_a_message_signed_wrong_or_not_at_all_is_refused_401_and_never_answered(
    hub: HubServer, fake: FakeWhatsApp
) -> None:
    user = new_user()
    data = payload(message(user, VPN_QUESTION))
    body = json.dumps(data).encode()
    for signature in (None, sign(body, "another-apps-secret"), "sha256=", sign(body).removeprefix("sha256=")):
        response = post(hub, data, signature=signature)
        assert response.status_code == 401, signature
        assert response.json()["error"]["type"] == "unauthorized"
    assert post(hub, data).status_code == 200  # the same body, signed: accepted (the ids were never claimed)
    idle(hub)
    assert len(fake.to(user)) == 1


def test_bad_json_with_a_good_signature_is_a_clear_400(hub: HubServer) -> None:
    body = b"{not json"
    response = httpx.post(f"{hub.url}/whatsapp/webhook", content=body,
                          headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request"


# --- answers ---------------------------------------------------------------------------------------


def test_a_question_is_answered_once_in_its_chat_with_feedback_buttons(hub: HubServer, fake: FakeWhatsApp) -> None:
    answered = metric(hub.url, "hub_adapter_events_total", platform="whatsapp", outcome="answered")
    user = new_user()
    asked = message(user, VPN_QUESTION)
    assert post(hub, payload(asked)).status_code == 200
    idle(hub)
    (sent,) = fake.to(user)
    assert "FortiClient" in sent.text and "[1]" in sent.text  # answered from the knowledge base, with its sources
    assert sent.body["context"] == {"message_id": asked["id"]}  # as a reply to the question
    assert [b["title"] for b in sent.buttons] == ["👍", "👎"]  # no person to hand to: no third button
    assert fake.reads == [asked["id"]]  # blue ticks and the typing indicator first
    assert metric(hub.url, "hub_adapter_events_total", platform="whatsapp", outcome="answered") == answered + 1
    logs.flush()
    logged = Path(hub.settings.log_file or "").read_text(encoding="utf-8")
    assert user not in logged and ACCESS_TOKEN not in logged and APP_SECRET not in logged  # a number is personal data


def test_every_message_of_a_batch_is_answered_and_statuses_are_not(hub: HubServer, fake: FakeWhatsApp) -> None:
    first, second = new_user(), new_user()
    status = {"id": "wamid.old", "status": "delivered", "timestamp": str(int(time.time())), "recipient_id": first}
    data = payload(message(first, VPN_QUESTION), message(second, "How do I claim travel expenses?"),
                   statuses=[status])  # fmt: skip
    assert post(hub, data).status_code == 200
    idle(hub)
    assert len(fake.to(first)) == 1 and len(fake.to(second)) == 1
    statuses_only = payload()
    statuses_only["entry"][0]["changes"][0]["value"] |= {"messages": [], "statuses": [status]}
    assert post(hub, statuses_only).status_code == 200
    idle(hub)
    assert len(fake.sent) == 2


def test_a_redelivered_message_is_answered_once(hub: HubServer, fake: FakeWhatsApp) -> None:
    user = new_user()
    data = payload(message(user, VPN_QUESTION))
    duplicates = metric(hub.url, "hub_adapter_events_total", platform="whatsapp", outcome="duplicate")
    assert post(hub, data).status_code == 200
    assert post(hub, data).status_code == 200  # WhatsApp did not see the first 200 in time
    idle(hub)
    assert post(hub, data).status_code == 200  # and once more after the answer
    idle(hub)
    assert len(fake.to(user)) == 1
    assert metric(hub.url, "hub_adapter_events_total", platform="whatsapp", outcome="duplicate") == duplicates + 2


def test_a_photo_or_voice_note_gets_a_polite_note(hub: HubServer, fake: FakeWhatsApp) -> None:
    user = new_user()
    photo = message(user, kind="image", image={"id": "1479537139650973", "mime_type": "image/jpeg"})
    assert post(hub, payload(photo)).status_code == 200
    idle(hub)
    (note,) = fake.texts_to(user)
    assert "text" in note and "文字" in note


def test_outside_the_24_hour_window_the_template_goes_never_nothing(hub: HubServer, fake: FakeWhatsApp) -> None:
    late = new_user()  # the message waited in the queue past the window (by its timestamp)
    assert post(hub, payload(message(late, VPN_QUESTION, age_sec=25 * 3600))).status_code == 200
    closed = new_user()  # WhatsApp says so itself (error 131047)
    fake.close_window(closed)
    assert post(hub, payload(message(closed, VPN_QUESTION))).status_code == 200
    idle(hub)
    assert fake.texts_to(late) == ["template:askhub_reopen"]
    assert fake.texts_to(closed) == ["template:askhub_reopen"]
    assert fake.to(late)[0].body["template"]["language"] == {"code": "en_US"}


def test_a_thumbs_down_is_recorded_and_thanked(hub: HubServer, fake: FakeWhatsApp) -> None:
    user = new_user()
    assert post(hub, payload(message(user, VPN_QUESTION))).status_code == 200
    idle(hub)
    (answer,) = fake.to(user)
    down = next(b for b in answer.buttons if b["title"] == "👎")
    before = metric(hub.url, "hub_feedback_total", platform="whatsapp", rating="down")
    assert post(hub, payload(button(user, down["id"], "👎"))).status_code == 200
    idle(hub)
    assert metric(hub.url, "hub_feedback_total", platform="whatsapp", rating="down") == before + 1
    assert fake.texts_to(user)[-1] == "Thanks for the feedback!"


# --- render (pure) -----------------------------------------------------------------------------------


def result(answer: str, sources: int = 2) -> AskResult:
    found = [Source(f"doc{n}#0", f"Document {n}", "text", 1.0) for n in range(sources)]
    return AskResult("How do I claim travel expenses?", answer, found, "extractive", False, Usage(0, 0, 0), "abc123")


def test_a_short_answer_is_one_interactive_message() -> None:
    (only,) = render.answer_messages(result("Claim them in the expense tool."), person=True)
    assert only["type"] == "interactive"
    body = only["interactive"]["body"]["text"]
    assert body.startswith("Claim them") and "[1] Document 0" in body and "[2] Document 1" in body
    titles = [b["reply"]["title"] for b in only["interactive"]["action"]["buttons"]]
    assert titles == ["👍", "👎", "Talk to a person"]


def test_a_long_answer_is_split_at_4096_and_ends_with_the_buttons() -> None:
    long = " ".join(f"Sentence number {n} explains one more step of the expense claim." for n in range(400))
    messages = render.answer_messages(result(long))
    texts = [m["text"]["body"] for m in messages if m["type"] == "text"]
    assert len(texts) >= 2 and all(len(t) <= render.TEXT_LIMIT for t in texts)
    assert messages[-1]["type"] == "interactive" and "[1]" in messages[-1]["interactive"]["body"]["text"]
    assert len(messages) <= render.MAX_TEXTS + 1


def test_both_doors_are_off_while_their_credentials_are_unset(tmp_path: Path, sample_index: Path) -> None:
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN,
                             WHATSAPP_APP_SECRET=APP_SECRET, TELEGRAM_BOT_TOKEN="1:x")  # fmt: skip
    with HubServer(settings) as server:  # WhatsApp lacks its verify token and number, Telegram its secret
        for path in ("/whatsapp/webhook", "/telegram/webhook"):
            response = httpx.post(f"{server.url}{path}", json={}, timeout=10)
            assert response.status_code == 404 and response.json()["error"]["type"] == "not_found", path
        assert httpx.get(f"{server.url}/whatsapp/webhook", timeout=10).status_code == 404
