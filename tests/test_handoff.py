"""The handoff core (core/handoff) against a recording desk and customer channel, on both backends.

The platforms' own tests (tests/test_handoff_line.py) run the real SDKs against the fakes; here
the service's rules: who starts one, what is relayed once, who closes it, on memory and Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.handoff import Customer, CustomerMessage, DeskRef, Handoff, HandoffService, Opening, Status
from core.handoff.triggers import asks_for_person, feedback_asks_for_person
from core.hub import Hub
from tests.conftest import logged_text, make_settings, write_yaml

CHANNEL = "C0AGENTS"


class RecordingDesk:
    def __init__(self) -> None:
        self.opened: list[tuple[Handoff, Opening]] = []
        self.posts: list[tuple[DeskRef, str, str]] = []
        self.updates: list[Status] = []
        self.fail_next = 0
        self.ts = ""  # the last opening message's

    async def open(self, handoff: Handoff, opening: Opening, *, key: str, maybe_done: bool) -> DeskRef:
        self.opened.append((handoff, opening))
        self.ts = f"1700.{len(self.opened):04d}"
        return DeskRef(CHANNEL, self.ts)

    async def post(self, ref: DeskRef, text: str, *, key: str, maybe_done: bool) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("slack down")
        if maybe_done and any(k == key for _, _, k in self.posts):
            return
        self.posts.append((ref, text, key))

    async def update(self, ref: DeskRef, handoff: Handoff, status: Status) -> None:
        self.updates.append(status)


class RecordingChannel:
    def __init__(self) -> None:
        self.delivered: list[tuple[str, str, str]] = []  # (conversation, text, key)
        self.keys: set[str] = set()

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        if key not in self.keys:  # the platform's own once-per-key (LINE's retry key)
            self.keys.add(key)
            self.delivered.append((customer.conversation, text, key))
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_hub(tmp_path: Path, redis: str | None, **handoff: Any) -> Hub:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_yaml(tmp_path / "hub.yaml", {"handoff": {"slack_channel": CHANNEL, **handoff}})
    env = {"HUB_CONFIG": str(config), "SLACK_BOT_TOKEN": "xoxb-t"}
    if redis:
        env["REDIS_URL"] = redis
    return Hub(make_settings(tmp_path, **env))


@pytest.fixture(params=["memory", "redis"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HandoffService]:
    redis = request.getfixturevalue("redis_db") if request.param == "redis" else None
    hub = make_hub(tmp_path, redis)
    hub.handoff.clock = Clock()
    hub.handoff.register_desk(RecordingDesk())
    hub.handoff.register_customer("line", RecordingChannel())
    yield hub.handoff
    await hub.backend.close()


def desk(service: HandoffService) -> RecordingDesk:
    return service._desk  # type: ignore[return-value]


def channel(service: HandoffService) -> RecordingChannel:
    return service._customers["line"]  # type: ignore[return-value]


def customer(chat: str = "Ucustomer1") -> Customer:
    return Customer(platform="line", tenant="cs", conversation=chat, user=chat, address={"to": chat})


def says(text: str, event: str, chat: str = "Ucustomer1", kind: str = "text") -> CustomerMessage:
    return CustomerMessage(customer(chat), event, text, kind)  # type: ignore[arg-type]


def test_trigger_words_in_both_languages() -> None:
    triggers = ["真人", "客服人員", "human", "agent", "talk to a person"]
    for text in ("我要找真人", "請幫我轉 客服人員", "HUMAN please", "Can I talk to  a person?", "ＡＧＥＮＴ", "真 人"):
        assert asks_for_person(text, triggers), text
    for text in ("how do returns work", "the reagent is out of stock", "humane society", "人真好"):
        assert not asks_for_person(text, triggers), text
    assert feedback_asks_for_person("down", "wrong, let me talk to a person", triggers)
    assert not feedback_asks_for_person("up", "talk to a person", triggers)
    assert not feedback_asks_for_person("down", "wrong answer", triggers)


async def test_a_trigger_starts_one_handoff_and_messages_relay_both_ways(service: HandoffService) -> None:
    assert (await service.intercept(says("退貨要多久?", "e1"))).action == "bot"
    started = await service.intercept(says("我想找真人客服", "e2"))
    assert started.action == "started" and "真人客服" in (started.say or "")
    again = await service.intercept(says("我想找真人客服", "e2"))  # the same event again (a reclaimed job)
    assert again.action == "started" and again.handoff_id == started.handoff_id
    assert len(desk(service).opened) == 1
    _, opening = desk(service).opened[0]
    assert opening.platform == "line" and opening.tenant == "cs" and "我想找真人客服" in opening.summary
    assert opening.summary_kind == "verbatim"  # no model configured: the last turns as they are
    assert (await service.intercept(says("訂單 123", "e3"))).action == "relayed"
    assert (await service.intercept(says("訂單 123", "e3"))).action == "relayed"  # a redelivery
    assert (await service.intercept(says("[sticker]", "e4", kind="sticker"))).action == "relayed"
    assert [text for _, text, _ in desk(service).posts] == ["訂單 123", "[sticker]"]
    ref = DeskRef(CHANNEL, desk(service).ts)
    assert await service.from_agent(CHANNEL, ref.ts, "UAGENT", "您好，我來幫您查", key="m1") == "delivered"
    assert await service.from_agent(CHANNEL, ref.ts, "UAGENT", "您好，我來幫您查", key="m1") == "delivered"
    assert [t for _, t, _ in channel(service).delivered] == ["您好，我來幫您查"]
    assert await service.from_agent(CHANNEL, "999.000", "UAGENT", "hi", key="m2") == "not_handoff"
    assert (await service.intercept(says("hi", "x1", chat="Uother"))).action == "bot"  # another chat is not handed off

    assert await service.take(CHANNEL, ref.ts, "UAGENT")
    assert desk(service).updates[-1] == Status("taken", taken_by="UAGENT")
    service.clock.now += 125  # type: ignore[attr-defined]
    assert await service.resolve(CHANNEL, ref.ts, "UAGENT")
    assert not await service.resolve(CHANNEL, ref.ts, "UOTHER")  # the second click closes nothing
    end = desk(service).updates[-1]
    assert end.state == "resolved" and end.resolved_by == "UAGENT" and end.duration_sec == 125
    ended = [t for _, t, _ in channel(service).delivered]
    assert len(ended) == 2 and "結束" in ended[1]  # told once, in Chinese
    assert (await service.intercept(says("退貨要多久?", "e5"))).action == "bot"  # the bot answers again
    assert await service.from_agent(CHANNEL, ref.ts, "UAGENT", "late", key="m3") == "closed"


async def test_english_customer_is_told_in_english(service: HandoffService) -> None:
    started = await service.intercept(says("Can I talk to a person?", "e1"))
    assert started.say and "person" in started.say


async def test_idle_handoffs_close_by_themselves(service: HandoffService) -> None:
    await service.intercept(says("human please", "e1"))
    service.clock.now += 1000  # type: ignore[attr-defined]
    assert await service.close_idle() == 0  # 1000 s < 1800 s
    await service.intercept(says("still there?", "e2"))  # a message keeps it open
    service.clock.now += 1799  # type: ignore[attr-defined]
    assert await service.close_idle() == 0
    service.clock.now += 2  # type: ignore[attr-defined]
    assert await service.close_idle() == 1
    assert desk(service).updates[-1].outcome == "idle" and desk(service).updates[-1].resolved_by is None
    assert "quiet" in channel(service).delivered[-1][1]
    assert await service.close_idle() == 0
    assert (await service.intercept(says("hello", "e3"))).action == "bot"


async def test_a_failed_relay_is_retried_and_posted_once(service: HandoffService) -> None:
    from core.handoff import RelayFailed

    await service.intercept(says("human please", "e1"))
    desk(service).fail_next = 1
    with pytest.raises(RelayFailed):
        await service.intercept(says("my order", "e2"))
    assert (await service.intercept(says("my order", "e2"))).action == "relayed"
    assert (await service.intercept(says("my order", "e2"))).action == "relayed"
    assert [t for _, t, _ in desk(service).posts] == ["my order"]


async def test_the_desk_sees_personal_data_redacted_by_default(service: HandoffService) -> None:
    await service.intercept(says("human please, my phone is 0912-345-678", "e1"))
    await service.intercept(says("email me at amy@example.com", "e2"))
    _, opening = desk(service).opened[0]
    shown = opening.summary + str(opening.transcript) + str(desk(service).posts)
    assert "0912" not in shown and "amy@example.com" not in shown and "[PHONE]" in shown


async def test_raw_personal_data_when_the_company_chooses_it(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, None, personal_data="raw")
    hub.handoff.register_desk(RecordingDesk())
    hub.handoff.register_customer("line", RecordingChannel())
    await hub.handoff.intercept(says("human please, my phone is 0912-345-678", "e1"))
    assert "0912-345-678" in desk(hub.handoff).opened[0][1].summary


async def test_second_no_answer_in_a_row_and_feedback_start_one_when_configured(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, None, on_second_no_answer=True, on_feedback=True)
    hub.handoff.register_desk(RecordingDesk())
    hub.handoff.register_customer("line", RecordingChannel())
    service = hub.handoff
    assert (await service.after_answer(says("q1", "e1"), no_knowledge=True)).action == "bot"
    assert (await service.after_answer(says("q2", "e2"), no_knowledge=False)).action == "bot"  # the row breaks
    assert (await service.after_answer(says("q3", "e3"), no_knowledge=True)).action == "bot"
    assert (await service.after_answer(says("q4", "e4"), no_knowledge=True)).action == "started"
    other = customer("Ufeedback")
    assert (await service.on_feedback(other, "f1", "down", "wrong")).action == "bot"
    assert (await service.on_feedback(other, "f2", "down", "wrong, talk to a person")).action == "started"


async def test_only_the_listed_doors_and_tenants_hand_off(tmp_path: Path) -> None:
    """``handoff.doors`` / ``handoff.tenants``: elsewhere the trigger is a question for the bot and
    no button offers a person."""
    hub = make_hub(tmp_path, None, doors=["line"], tenants=["cs"], on_feedback=True, on_second_no_answer=True)
    hub.handoff.register_desk(RecordingDesk())
    service = hub.handoff
    portal = Customer(platform="portal", tenant="cs", conversation="c1")
    elsewhere = Customer(platform="line", tenant="hr", conversation="U2", address={"to": "U2"})
    assert not service.covers("portal", "cs") and not service.covers("line", "hr") and service.covers("line", "cs")
    for who in (portal, elsewhere):
        message = CustomerMessage(who, f"t-{who.platform}-{who.tenant}", "talk to a person")
        assert (await service.intercept(message)).action == "bot"
        assert (await service.on_request(message)).action == "bot"
        assert (await service.on_feedback(who, "f", "down", "talk to a person")).action == "bot"
        for n in range(2):
            assert (await service.after_answer(message, no_knowledge=True)).action == "bot", n
    assert desk(service).opened == []
    assert (await service.intercept(says("talk to a person", "e1"))).action == "started"  # LINE, cs: as before


def test_an_unknown_door_is_one_clear_line(tmp_path: Path) -> None:
    from core.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        make_hub(tmp_path, None, doors=["line", "slack"])
    message = str(raised.value)
    assert message.endswith(
        "hub.yaml: handoff.doors: unknown door 'slack' (doors: line, discord, portal, whatsapp, telegram, teams)"
    )
    assert "\n" not in message
    with pytest.raises(ConfigError):
        make_hub(tmp_path, None, tenants=[])  # an empty list would switch it off unseen: leave it out instead


async def test_a_person_button_starts_one_handoff_however_often_it_is_pressed(service: HandoffService) -> None:
    pressed = says("talk to a person", "person:p1")
    first = await service.on_request(pressed)
    assert first.action == "started" and "person" in (first.say or "")
    again = await service.on_request(pressed)  # a second press, a redelivery: the same one
    assert again.action == "started" and again.handoff_id == first.handoff_id
    other = await service.on_request(says("talk to a person", "person:p2"))  # another 👎's button
    assert other.action == "relayed" and other.handoff_id == first.handoff_id
    assert len(desk(service).opened) == 1 and desk(service).posts == []  # nothing relayed for a press


async def test_off_without_a_slack_token(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "hub.yaml", {"handoff": {"slack_channel": CHANNEL}})
    hub = Hub(make_settings(tmp_path, HUB_CONFIG=str(config)))
    hub.handoff.register_desk(RecordingDesk())
    assert not hub.handoff.enabled
    assert (await hub.handoff.intercept(says("human please", "e1"))).action == "bot"


async def test_two_processes_on_redis_close_each_handoff_once(tmp_path: Path, redis_db: str) -> None:
    hubs = [make_hub(tmp_path / str(n), redis_db) for n in range(2)]
    clock = Clock()
    for hub in hubs:
        hub.handoff.clock = clock
        hub.handoff.register_desk(RecordingDesk())
        hub.handoff.register_customer("line", RecordingChannel())
    try:
        for n in range(5):
            got = await hubs[n % 2].handoff.intercept(says("human please", f"e{n}", chat=f"U{n}"))
            assert got.action == "started"
        # The same trigger in one chat from both processes at once: one handoff.
        both = await asyncio.gather(*(h.handoff.intercept(says("human", "same", chat="Usame")) for h in hubs))
        assert {b.handoff_id for b in both} == {both[0].handoff_id}
        assert sum(len(desk(h.handoff).opened) for h in hubs) == 6
        clock.now += 2000
        closed = await asyncio.gather(*(h.handoff.close_idle() for h in hubs))
        assert sum(closed) == 6
        delivered = [d for h in hubs for d in channel(h.handoff).delivered]
        assert sorted(c for c, _, _ in delivered) == sorted([f"U{n}" for n in range(5)] + ["Usame"])
    finally:
        for hub in hubs:
            await hub.backend.close()


async def test_audit_lines_hold_no_customer_id_or_words(
    service: HandoffService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="askhub")
    await service.intercept(says("human please, 0912-345-678", "e1", chat="Usecretcustomer"))
    await service.take(CHANNEL, desk(service).ts, "UAGENT")
    await service.resolve(CHANNEL, desk(service).ts, "UAGENT")
    audits = [r for r in caplog.records if r.name == "askhub.audit"]
    assert [r.__dict__["event"] for r in audits] == ["handoff_started", "handoff_taken", "handoff_ended"]
    text = logged_text(caplog.records)
    assert "Usecretcustomer" not in text and "0912" not in text


async def test_when_slack_cannot_take_a_handoff_the_bot_answers(tmp_path: Path) -> None:
    from core.handoff import HandoffUnavailable

    class DownDesk(RecordingDesk):
        async def open(self, handoff: Handoff, opening: Opening, *, key: str, maybe_done: bool) -> DeskRef:
            raise RuntimeError("slack down")

    hub = make_hub(tmp_path, None)
    hub.handoff.register_desk(DownDesk())
    with pytest.raises(HandoffUnavailable):
        await hub.handoff.intercept(says("human please", "e1"))
    assert await hub.handoff.store.active(customer()) is None  # the chat is the bot's: nothing half-open
    hub.handoff.register_desk(RecordingDesk())
    assert (await hub.handoff.intercept(says("human please", "e2"))).action == "started"  # Slack is back


async def test_a_worker_racing_on_the_same_trigger_finds_the_record_half_written(service: HandoffService) -> None:
    """Another worker (the same event, reclaimed) wrote the record but has not claimed the chat yet:
    this one must start that same handoff, not mistake it for one that has ended."""
    import uuid

    from core.handoff.service import _IDS

    message = says("human please", "race")
    handoff_id = uuid.uuid5(_IDS, "line:race").hex
    await service.store.save(Handoff(id=handoff_id, customer=message.customer, language="en", started_at=1.0,
                                     reason="trigger", started_by="race"))  # fmt: skip
    got = await service.intercept(message)
    assert got.action == "started" and got.handoff_id == handoff_id
    assert len(desk(service).opened) == 1


async def test_a_message_after_the_close_is_claimed_goes_to_the_bot_not_the_resolved_thread(
    service: HandoffService,
) -> None:
    """The close tells the customer, updates the desk, then gives the chat back: a message in between
    (the customer answering the end notice) is the bot's, never relayed into the resolved thread."""
    await service.intercept(says("human please", "e1"))
    telling, go_on = asyncio.Event(), asyncio.Event()
    delivered = channel(service).deliver

    async def slow_end(who: Customer, text: str, *, key: str) -> bool:
        if key.startswith("end:"):
            telling.set()
            await go_on.wait()
        return await delivered(who, text, key=key)

    channel(service).deliver = slow_end  # type: ignore[method-assign]
    closing = asyncio.create_task(service.resolve(CHANNEL, desk(service).ts, "UAGENT"))
    await telling.wait()
    posted = len(desk(service).posts)
    assert (await service.intercept(says("thanks!", "e2"))).action == "bot"
    go_on.set()
    assert await closing
    assert len(desk(service).posts) == posted


async def test_the_save_form_offers_only_what_the_customers_tenant_reads(tmp_path: Path) -> None:
    """Once collections are configured a tenant that names none reads none, so its customer's
    answer can be saved into none (not "every collection"); a tenant's own list keeps its order."""
    config = write_yaml(tmp_path / "hub.yaml", {
        "collections": {"internal": {"path": "internal"}, "public": {"path": "public"}},
        "tenants": {"hr": {"collections": ["public", "internal"]}},
        "handoff": {"slack_channel": CHANNEL},
    })  # fmt: skip
    hub = Hub(make_settings(tmp_path, HUB_CONFIG=str(config), SLACK_BOT_TOKEN="xoxb-t"))
    hub.handoff.register_desk(RecordingDesk())
    hub.handoff.register_customer("line", RecordingChannel())
    try:
        offered = {}
        for tenant, chat in (("cs", "Ucs"), ("hr", "Uhr")):
            who = Customer(platform="line", tenant=tenant, conversation=chat, user=chat, address={"to": chat})
            started = await hub.handoff.intercept(CustomerMessage(who, f"e-{tenant}", "我想找真人客服", "text"))
            assert started.action == "started"
            proposal = await hub.handoff.proposal(CHANNEL, desk(hub.handoff).ts)
            assert proposal is not None
            offered[tenant] = proposal["collections"]
        assert offered == {"cs": [], "hr": ["public", "internal"]}
    finally:
        await hub.backend.close()
