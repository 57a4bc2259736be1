"""The handoff service: start, relay both ways, take, resolve, and close what went quiet.

Customer side (any platform's adapter, through ``door.handoff``):
    intercept(message)        before the bot answers: "bot" (answer as usual), "started" (tell the
                              customer ``say``; the agents got the opening message) or "relayed"
                              (the message went to the agents; the bot stays silent)
    after_answer(message, …)  after the bot answered: the second "I don't know" in a row may start one
    on_feedback(…)            a 👎 whose comment asks for a person may start one
Desk side (the Slack adapter): from_agent (a person's thread reply -> the customer), take, resolve.
Operations: close_idle (the sweeper, safe with several processes), listing (the admin API).

Exactly once: a customer's message is relayed under its platform event id and an agent's
reply under its desk event id; each relay is claimed in the store, and a repeat after a crash
tells the desk or the customer channel ``maybe_done`` (or reuses the same delivery key) so
that nothing is shown twice. Closing is a claim too: one process wins, tells the customer and
updates the desk; if it dies half-way, the sweeper finishes its work under the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from core.accounting import Accounting
from core.auth.collections import CollectionPolicy
from core.auth.principal import Principal
from core.config import HandoffSettings, Settings
from core.conversation import Conversations
from core.errors import RateLimited
from core.handoff import notices, summary, telemetry
from core.handoff.ports import CustomerChannel, Desk, DeskRef, Opening, Status
from core.handoff.record import Customer, Handoff
from core.handoff.store import HandoffStore
from core.handoff.triggers import asks_for_person, feedback_asks_for_person, request_phrase
from core.llm.gateway import ModelGateway
from core.llm.prompt import language_of
from core.messages import polite
from core.pii import redact
from core.schema import AskRequest
from core.state import StateBackend

log = logging.getLogger("askhub.handoff")

_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "askhub:handoff")
DESK_WAIT_SEC = 5.0  # a message racing the opening message waits this long for its thread
FINISH_AFTER_SEC = 30.0  # a close claimed this long ago and still open: its closer died; finish it
NO_ANSWER_SEC = 3600.0


class HandoffUnavailable(Exception):
    """The desk could not take a new handoff (Slack down): the bot answers instead."""


class RelayFailed(Exception):
    """A message could not be relayed now; the job fails and the queue tries it again."""


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """One customer message as the customer's adapter sees it. ``event_id`` is the platform's
    id of the event (the relay's once-key); ``text`` is the text, or a short note for a
    sticker or an image ("[sticker]", "[image]")."""

    customer: Customer
    event_id: str
    text: str
    kind: Literal["text", "sticker", "image", "other"] = "text"
    admitted: bool = False  # the door already counted it against the limits (the portal does)


@dataclass(frozen=True, slots=True)
class Intercept:
    # "limited": over the customer's limit or the tenant's quota, not relayed; ``say`` tells them so
    action: Literal["bot", "started", "relayed", "limited"]
    say: str | None = None  # "started" / "limited": tell the customer this, the way the adapter answers
    handoff_id: str | None = None


BOT = Intercept("bot")


class HandoffService:
    def __init__(
        self,
        settings: Settings,
        backend: StateBackend,
        *,
        models: ModelGateway,
        accounting: Accounting,
        conversations: Conversations,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = HandoffStore(backend)
        self._backend = backend
        self._models, self._accounting, self._conversations = models, accounting, conversations
        self.clock = clock  # tests move time instead of sleeping
        self._desk: Desk | None = None
        self._customers: dict[str, CustomerChannel] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        self._all = settings
        desk = settings.handoff.desk if settings.handoff is not None else "slack"
        ready = (
            bool(settings.teams_app_id and settings.teams_app_password)
            if desk == "teams"
            else bool(settings.slack_bot_token)
        )
        self.settings: HandoffSettings | None = settings.handoff if ready else None
        if settings.handoff is not None and not ready:
            needs = "TEAMS_APP_ID and TEAMS_APP_PASSWORD are" if desk == "teams" else "SLACK_BOT_TOKEN is"
            log.warning(f"handoff is configured but {needs} not set: handoff is off")

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    def covers(self, platform: str, tenant: str) -> bool:
        """Whether this door's customers of this tenant can be handed off (``handoff.doors`` and
        ``handoff.tenants``); elsewhere the bot answers and a trigger word is just a question."""
        settings = self.settings
        if settings is None or self._desk is None or platform not in settings.doors:
            return False
        return settings.tenants is None or tenant in settings.tenants

    def request_text(self, language: str) -> str:
        """What a "Talk to a person" button sends as the customer's message: a configured trigger."""
        assert self.settings is not None
        return request_phrase(self.settings.triggers, language)

    # -- plugging in --

    def register_desk(self, desk: Desk) -> None:
        self._desk = desk

    def register_customer(self, platform: str, channel: CustomerChannel) -> None:
        self._customers[platform] = channel

    @property
    def desk_platform(self) -> str | None:
        """Where the agents work ("slack" or "teams"): the adapter of that platform registers the desk."""
        return self.settings.desk if self.settings else None

    @property
    def desk_channel(self) -> str | None:
        return self.settings.channel if self.settings else None

    @property
    def agents(self) -> tuple[str, ...] | None:
        """Who may Take, Resolve and save a handoff's answer: Slack user and user-group ids
        (``handoff.agents``); None: anyone in the desk channel."""
        return tuple(self.settings.agents) if self.settings and self.settings.agents else None

    # -- the customer's side --

    async def intercept(self, message: CustomerMessage) -> Intercept:
        """Before the bot answers a customer's message (see the module docstring)."""
        if self.settings is None or not self.covers(message.customer.platform, message.customer.tenant):
            return BOT
        current = await self.store.active(message.customer)
        if current is not None and await self.store.fact(current.id, "closed") is not None:
            return BOT  # being closed (the customer may be answering the end notice): the bot's again
        if current is not None and current.started_by != message.event_id:
            return await self._to_desk(current, message)
        if current is None and (message.kind != "text" or not asks_for_person(message.text, self.settings.triggers)):
            return BOT
        return await self._start(message, "trigger")

    async def with_person(self, customer: Customer) -> bool:
        """Whether a person has this conversation now (a door that sees messages not addressed to
        the bot relays them only then)."""
        if not self.covers(customer.platform, customer.tenant):
            return False
        current = await self.store.active(customer)
        return current is not None and await self.store.fact(current.id, "closed") is None

    async def after_answer(self, message: CustomerMessage, *, no_knowledge: bool) -> Intercept:
        """After the bot answered: with ``on_second_no_answer``, a second "I don't know" in a row
        starts a handoff (the adapter sends ``say`` after the bot's answer)."""
        if self.settings is None or not self.settings.on_second_no_answer:
            return BOT
        if not self.covers(message.customer.platform, message.customer.tenant):
            return BOT
        key = f"handoff:nok:{self.store._conv(message.customer)}"
        if not no_knowledge:
            await self._backend.delete(key)
            return BOT
        if not await self._backend.set(key, b"1", NO_ANSWER_SEC, only_if_absent=True):
            await self._backend.delete(key)
            return await self._start(message, "no_answer")
        return BOT

    async def on_feedback(self, customer: Customer, event_id: str, rating: str, comment: str | None) -> Intercept:
        """A 👎 with a comment that asks for a person (``on_feedback``) starts a handoff."""
        if self.settings is None or not self.settings.on_feedback:
            return BOT
        if not self.covers(customer.platform, customer.tenant):
            return BOT
        if not feedback_asks_for_person(rating, comment, self.settings.triggers):
            return BOT
        if await self.store.active(customer) is not None:
            return BOT
        return await self._start(CustomerMessage(customer, event_id, comment or ""), "feedback")

    async def on_request(self, message: CustomerMessage) -> Intercept:
        """The customer pressed "Talk to a person" (after a 👎): starts a handoff, once per
        ``message.event_id`` (a second press, a redelivery: the same one). "relayed": a person
        has the conversation already (nothing is posted); "bot": not here."""
        customer = message.customer
        if self.settings is None or not self.covers(customer.platform, customer.tenant):
            return BOT
        current = await self.store.active(customer)
        if current is not None and await self.store.fact(current.id, "closed") is not None:
            return BOT  # being closed right now: the customer may press again in a moment
        if current is not None and current.started_by != message.event_id:
            return Intercept("relayed", handoff_id=current.id)
        return await self._start(message, "feedback")

    async def _start(self, message: CustomerMessage, reason: str) -> Intercept:
        assert self.settings is not None and self._desk is not None
        customer = message.customer
        handoff_id = uuid.uuid5(_IDS, f"{customer.platform}:{message.event_id}").hex  # a reclaimed job: the same
        language = notices.language(message.text)
        current = await self.store.active(customer)
        if current is None:
            if await self.store.fact(handoff_id, "closed") is not None:
                return Intercept("relayed", handoff_id=handoff_id)  # a very late redelivery: it has ended
            new = Handoff(id=handoff_id, customer=customer, language=language, started_at=self.clock(),
                          reason=reason, started_by=message.event_id)  # fmt: skip
            held = await self.store.claim(new)
            other = await self.store.get(held)
            if other is None:
                return BOT
            if held != handoff_id:  # another message of this chat started one a moment ago
                return await self._to_desk(other, message)
            current = other  # ours (a worker racing on the same event may have opened it already)
            await self.store.note(new.id, "question", {"text": redact(await self._question(customer, message))})
        elif current.id != handoff_id:
            return await self._to_desk(current, message)
        if current.desk_ts is None:
            try:
                current = await self._open_desk(current, message)
            except Exception as exc:
                log.warning("handoff not opened on the desk", extra={"handoff": handoff_id,
                                                                    "exc": type(exc).__name__})  # fmt: skip
                await self.store.release(current)
                raise HandoffUnavailable from exc
        if await self.store.first(current.id, "started", {"at": current.started_at}):
            await self.store.touch(current.id, self.clock())
            telemetry.HANDOFFS.labels(customer.platform, "started").inc()
            telemetry.audit("started", current, reason=reason, desk_channel=current.desk_channel)
        return Intercept("started", say=notices.customer("started", current.language), handoff_id=current.id)

    async def _open_desk(self, handoff: Handoff, message: CustomerMessage) -> Handoff:
        assert self.settings is not None and self._desk is not None
        redacted = self.settings.personal_data == "redacted"
        transcript = await self._transcript(handoff.customer, message, redacted)
        text, kind = await summary.summarise(
            transcript, models=self._models, accounting=self._accounting, tenant=handoff.tenant,
            platform=handoff.platform, language=handoff.language, max_tokens=self.settings.summary_max_tokens,
        )  # fmt: skip
        opening = Opening(handoff.platform, handoff.tenant, handoff.language, summary.shown(text, redacted), kind,
                          transcript[-self.settings.turns_shown * 2 :])  # fmt: skip
        key = f"open:{handoff.id}"
        state = await self.store.relay_state(key)
        if state != "new":  # another worker opens it right now, or died doing so: wait for its thread
            ref = await self._desk_ref(handoff)
            if ref is not None:
                return await self.store.get(handoff.id) or handoff
        ref = await self._desk.open(handoff, opening, key=key, maybe_done=state != "new")
        handoff = handoff.model_copy(update={"desk_channel": ref.channel, "desk_ts": ref.ts})
        await self.store.save(handoff)
        await self.store.relay_done(key)
        return handoff

    async def _transcript(self, customer: Customer, message: CustomerMessage, redacted: bool) -> summary.Transcript:
        turns: summary.Transcript = []
        memory = customer.memory_key
        if memory is None and customer.conversation_id:
            from core.ask import conversation_key  # the bot's own memory of this chat

            who = Principal(client=customer.platform, tenant=customer.tenant, user="", scopes=frozenset())
            request = AskRequest("", tenant=customer.tenant, platform=customer.platform,
                                 conversation_id=customer.conversation_id)  # fmt: skip
            memory = conversation_key(request, who)
        if memory is not None:
            for turn in await self._conversations.history(memory):
                turns += [("customer", turn.question), ("bot", turn.answer)]
        turns.append(("customer", message.text))
        return [(who, summary.shown(text, redacted)) for who, text in turns]

    async def _question(self, customer: Customer, message: CustomerMessage) -> str:
        """What the customer wanted answered: the last question the bot got before the handoff
        ("真人客服" alone asks nothing), else the message that started it."""
        earlier = [text for who, text in await self._transcript(customer, message, False) if who == "customer"]
        return earlier[-2] if len(earlier) > 1 else message.text

    async def _desk_ref(self, handoff: Handoff) -> DeskRef | None:
        """The thread; a message that raced the opening message waits a moment for it."""
        deadline = time.monotonic() + DESK_WAIT_SEC
        while handoff.desk_ts is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            handoff = await self.store.get(handoff.id) or handoff
        if handoff.desk_channel is None or handoff.desk_ts is None:
            return None
        return DeskRef(handoff.desk_channel, handoff.desk_ts)

    async def _to_desk(self, handoff: Handoff, message: CustomerMessage) -> Intercept:
        assert self.settings is not None and self._desk is not None
        ref = await self._desk_ref(handoff)
        if ref is None:
            telemetry.RELAYS.labels("to_agents", "failed").inc()
            raise RelayFailed("the handoff has no desk thread yet")
        key = f"in:{handoff.platform}:{message.event_id}"
        state = await self.store.relay_state(key)
        if state != "done":
            refused = await self._over_limit(message)
            if refused is not None:
                return Intercept("limited", say=refused, handoff_id=handoff.id)
            text = summary.shown(message.text, self.settings.personal_data == "redacted")
            # Someone else in a shared (public) thread is not the customer, and the agents see so.
            customer, sender = handoff.customer.user, message.customer.user
            author = {"author": "member"} if customer and sender and sender != customer else {}
            try:
                await self._desk.post(ref, text, key=key, maybe_done=state == "retry", **author)
            except Exception as exc:
                telemetry.RELAYS.labels("to_agents", "failed").inc()
                raise RelayFailed(type(exc).__name__) from exc
            await self.store.relay_done(key)
            await self.store.touch(handoff.id, self.clock())
            telemetry.RELAYS.labels("to_agents", "relayed").inc()
        return Intercept("relayed", handoff_id=handoff.id)

    async def _over_limit(self, message: CustomerMessage) -> str | None:
        """A relayed message counts like a question (per-user window, burst, the tenant's daily
        quota): an agent's time is limited like the model's. Over it: not relayed, and what the
        customer is told instead (never dropped in silence)."""
        if message.admitted:
            return None
        customer = message.customer
        who = Principal(customer.platform, customer.tenant, customer.user or customer.conversation, frozenset({"ask"}))
        try:
            await self._accounting.admit(who, f"handoff:{customer.platform}")
        except RateLimited as exc:
            telemetry.RELAYS.labels("to_agents", "limited").inc()
            quota = "quota" in exc.message or "budget" in exc.message
            kind = "relay_quota" if quota else "relay_limited"
            return polite(kind, language=language_of(message.text), retry_after=exc.retry_after)
        return None

    # -- the desk's side --

    async def from_agent(self, channel: str, thread_ts: str, agent: str, text: str, *, key: str) -> str:
        """A person's reply in a handoff thread -> the customer. "delivered", "not_handoff" (not a
        handoff thread: the adapter does what it would otherwise) or "closed" (it has ended)."""
        handoff = await self.store.by_desk(channel, thread_ts)
        if handoff is None:
            return "not_handoff"
        if await self.store.fact(handoff.id, "closed") is not None:
            telemetry.RELAYS.labels("to_customer", "closed").inc()
            return "closed"
        target = self._customers.get(handoff.platform)
        if target is None:
            raise RelayFailed(f"no {handoff.platform} channel in this process")
        if not await target.deliver(handoff.customer, text, key=f"out:{key}"):
            telemetry.RELAYS.labels("to_customer", "failed").inc()
            raise RelayFailed("the customer's platform did not take it")
        now = self.clock()
        await self.store.touch(handoff.id, now)
        # Offered as the verified answer at the end, redacted like a question: an agent's reply may
        # repeat the customer's number or address, and a verified answer is served to others.
        await self.store.note(handoff.id, "reply", {"text": redact(text)})
        if await self.store.first(handoff.id, "human", {"at": now, "by": agent}):
            telemetry.FIRST_REPLY_SECONDS.labels(handoff.platform).observe(max(0.0, now - handoff.started_at))
        telemetry.RELAYS.labels("to_customer", "relayed").inc()
        return "delivered"

    async def take(self, channel: str, ts: str, agent: str) -> bool:
        """An agent takes the handoff (the first Take wins; the message shows who has it)."""
        handoff = await self.store.by_desk(channel, ts)
        if handoff is None or await self.store.fact(handoff.id, "closed") is not None:
            return False
        if await self.store.first(handoff.id, "taken", {"by": agent, "at": self.clock()}):
            telemetry.HANDOFFS.labels(handoff.platform, "taken").inc()
            telemetry.audit("taken", handoff, agent=agent)
        taken = await self.store.fact(handoff.id, "taken") or {}
        assert self._desk is not None
        await self._desk.update(DeskRef(channel, ts), handoff, Status("taken", taken_by=str(taken.get("by") or agent)))
        return True

    async def resolve(self, channel: str, ts: str, agent: str) -> bool:
        handoff = await self.store.by_desk(channel, ts)
        if handoff is None:
            return False
        return await self._close(handoff, "resolved", agent)

    async def _close(self, handoff: Handoff, outcome: str, by: str | None) -> bool:
        now = self.clock()
        won = await self.store.first(handoff.id, "closed", {"at": now, "by": by, "outcome": outcome})
        if won:
            duration = max(0.0, now - handoff.started_at)
            telemetry.HANDOFFS.labels(handoff.platform, outcome).inc()
            telemetry.RESOLVE_SECONDS.labels(handoff.platform, outcome).observe(duration)
            telemetry.audit("ended", handoff, outcome=outcome, agent=by, duration_sec=round(duration, 1))
            await self._finish(handoff)  # the loser leaves it to the winner (or, if that dies, the sweeper)
        return won

    async def _finish(self, handoff: Handoff) -> None:
        """Tell the customer, update the desk, give the chat back to the bot (idempotent)."""
        closed = await self.store.fact(handoff.id, "closed") or {}
        outcome = str(closed.get("outcome") or "resolved")
        target = self._customers.get(handoff.platform)
        text = notices.customer("ended" if outcome == "resolved" else "idle", handoff.language)
        if target is None or not await target.deliver(handoff.customer, text, key=f"end:{handoff.id}"):
            log.warning("handoff end not delivered; the sweeper tries again", extra={"handoff": handoff.id})
            return
        if self._desk is not None and handoff.desk_channel and handoff.desk_ts:
            taken = await self.store.fact(handoff.id, "taken") or {}
            took = float(closed.get("at") or 0) - handoff.started_at
            status = Status("resolved", taken_by=_str(taken.get("by")), resolved_by=_str(closed.get("by")),
                            outcome=outcome, duration_sec=took)  # fmt: skip
            try:
                await self._desk.update(DeskRef(handoff.desk_channel, handoff.desk_ts), handoff, status)
            except Exception as exc:  # the customer knows; the message shows it on the next sweep
                log.warning("handoff desk update failed", extra={"handoff": handoff.id, "exc": type(exc).__name__})
                return
        await self.store.release(handoff)

    async def proposal(self, channel: str, ts: str) -> dict[str, Any] | None:
        """What "Save as verified answer" offers: the customer's question and the agent's last reply
        (both redacted), and the collections the customer's tenant reads (the first is the default):
        the only ones a save may name."""
        handoff = await self.store.by_desk(channel, ts)
        if handoff is None:
            return None
        question = await self.store.fact(handoff.id, "question") or {}
        reply = await self.store.fact(handoff.id, "reply") or {}
        # What the customer's tenant reads, by the wall's own rule (a tenant naming none reads none
        # once collections are configured), in the order the tenant names them.
        readable = CollectionPolicy(self._all).of_tenant(handoff.tenant)
        tenant = self._all.tenants.get(handoff.tenant)
        named = tenant.collections if tenant and tenant.collections else sorted(readable)
        collections = [c for c in named if c in readable]
        return {"handoff": handoff.id, "tenant": handoff.tenant, "question": redact(str(question.get("text") or "")),
                "answer": redact(str(reply.get("text") or "")), "collections": collections}  # fmt: skip

    # -- operations --

    async def close_idle(self) -> int:
        """One sweep: close handoffs quiet for ``idle_close_sec`` (one process wins each), finish
        closes a dead process left half-done, and measure the oldest unanswered wait."""
        if self.settings is None:
            return 0
        now, closed, oldest, count = self.clock(), 0, 0.0, 0
        for handoff_id, _started in (await self.store.open_ids()).items():
            handoff = await self.store.get(handoff_id)
            if handoff is None:
                continue
            count += 1
            if handoff.platform not in self._customers or self._desk is None:
                continue  # this process cannot tell that customer (another process's sweep will)
            ended = await self.store.fact(handoff_id, "closed")
            if ended is not None:
                if now - float(ended.get("at") or 0) >= FINISH_AFTER_SEC:
                    await self._finish(handoff)
                continue
            seen = await self.store.fact(handoff_id, "seen") or {}
            if now - float(seen.get("at") or handoff.started_at) >= self.settings.idle_close_sec:
                if await self._close(handoff, "idle", None):
                    closed += 1
                continue
            if await self.store.fact(handoff_id, "human") is None:
                oldest = max(oldest, now - handoff.started_at)
        telemetry.WAITING_SECONDS.set(oldest)
        telemetry.OPEN.set(count)
        return closed

    async def listing(self) -> list[dict[str, Any]]:
        """Open handoffs for the admin API: no customer id, no message text."""
        now, rows = self.clock(), []
        for handoff_id, started in sorted((await self.store.open_ids()).items(), key=lambda kv: kv[1]):
            handoff = await self.store.get(handoff_id)
            if handoff is None or await self.store.fact(handoff_id, "closed") is not None:
                continue
            taken = await self.store.fact(handoff_id, "taken") or {}
            human = await self.store.fact(handoff_id, "human") or {}
            rows.append({"id": handoff.id, "platform": handoff.platform, "tenant": handoff.tenant,
                         "reason": handoff.reason, "started_at": started, "waiting_sec": round(now - started, 1),
                         "taken_by": taken.get("by"), "first_reply_at": human.get("at"),
                         "desk_channel": handoff.desk_channel, "desk_ts": handoff.desk_ts})  # fmt: skip
        return rows

    def start(self) -> None:
        if self.settings is not None and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="handoff-sweeper")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        while True:
            interval = min(30.0, max(1.0, (self.settings.idle_close_sec if self.settings else 1800) / 20))
            await asyncio.sleep(interval)
            try:
                await self.close_idle()
            except Exception as exc:  # Redis away: the next sweep tries again
                log.warning("handoff sweep failed", extra={"exc": type(exc).__name__})


def _str(value: object) -> str | None:
    return str(value) if value else None
