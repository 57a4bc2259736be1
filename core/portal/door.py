"""The portal's /ask in front of the bot for a conversation with a person (core.handoff).

A portal conversation belongs to its asker (tenant, client, user: ``core.ask.conversation_key``),
and so does its handoff: the customer's conversation is that key, and agents' replies go to the
key's events, which only the same asker's stream reads. ``answer`` returns None when the bot
answers as usual; otherwise the AskResult the asker gets instead — the handoff notice when the
message starts one, a short acknowledgement while it is relayed (no model call, never cached).
``offer`` says what a "Talk to a person" button sends (a trigger), on the bot's own answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from core.accounting import Accounting
from core.ask import clean_question, conversation_key
from core.auth.principal import Principal
from core.errors import Unavailable
from core.handoff import Customer, CustomerMessage, HandoffService, HandoffUnavailable, RelayFailed
from core.handoff.notices import language
from core.handoff.triggers import asks_for_person
from core.portal.events import ConversationEvents
from core.schema import AskRequest, AskResult, Usage

log = logging.getLogger("askhub.portal")

PLATFORM = "portal"
MODEL = "handoff"  # the model field of an answer a person gives (or will give)
_SENT = {
    "en": "Sent to our team member. Their reply will appear here.",
    "zh-TW": "已轉給真人客服，回覆會顯示在這裡。",
}


@dataclass(frozen=True, slots=True)
class HandedOff:
    """What /ask answers instead of the bot, and which state the conversation is in."""

    result: AskResult
    state: Literal["started", "relayed"]
    conversation_id: str


def customer_of(request: AskRequest, who: Principal) -> Customer | None:
    key = conversation_key(request, who)
    if key is None:
        return None
    return Customer(platform=PLATFORM, tenant=who.tenant, conversation=key, user=f"{who.client}:{who.user}",
                    address={"stream": ConversationEvents.stream_of(key)}, conversation_id=request.conversation_id,
                    memory_key=key)  # fmt: skip


class PortalCustomer:
    """core.handoff.CustomerChannel: an agent's reply or the end notice becomes one event of the
    conversation's stream, its id derived from the once-key (a repeat is not shown twice)."""

    def __init__(self, events: ConversationEvents) -> None:
        self._events = events

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        kind: Literal["agent", "end"] = "end" if key.startswith("end:") else "agent"
        await self._events.publish(customer.address["stream"], key, kind, text)
        return True


class PortalDoor:
    def __init__(self, handoff: HandoffService, events: ConversationEvents, accounting: Accounting) -> None:
        self.handoff, self.events, self._accounting = handoff, events, accounting
        handoff.register_customer(PLATFORM, PortalCustomer(events))

    async def answer(self, request: AskRequest, who: Principal, *, max_chars: int) -> HandedOff | None:
        settings = self.handoff.settings
        if settings is None or not request.conversation_id or not self.handoff.covers(PLATFORM, who.tenant):
            return None
        customer = customer_of(request, who)
        if customer is None:
            return None
        question = clean_question(request.question, max_chars)
        if await self.handoff.store.active(customer) is None and not asks_for_person(question, settings.triggers):
            return None  # the common case: one GET, then the bot as usual
        admission = await self._accounting.admit(who, "/ask")  # a person's time is limited like the model's
        # The event id is the conversation's own: another asker's X-Request-ID never names this message.
        event_id = f"{customer.conversation}:{request.request_id}"
        try:
            got = await self.handoff.intercept(CustomerMessage(customer, event_id, question, admitted=True))
        except HandoffUnavailable:
            return None  # the desk cannot take it now: the bot answers
        except RelayFailed:
            raise Unavailable("your message could not be passed on yet; please send it again", retry_after=2) from None
        if got.action == "bot":
            return None
        text = (got.say or "") if got.action == "started" else _SENT[language(question)]
        log.info("portal message handed off", extra={"request_id": request.request_id, "handoff": got.action})
        result = AskResult(question=question, answer=text, sources=[], model=MODEL, cached=False, usage=Usage(),
                           request_id=request.request_id, outcome="handoff", admission=admission)  # fmt: skip
        return HandedOff(result, got.action, request.conversation_id)

    async def after_answer(self, request: AskRequest, who: Principal, result: AskResult) -> str | None:
        """After the bot answered: with ``on_second_no_answer``, its second "I don't know" in a row
        starts a handoff; what to tell the asker then (None: nothing)."""
        settings = self.handoff.settings
        if settings is None or not settings.on_second_no_answer or not request.conversation_id:
            return None
        if not self.handoff.covers(PLATFORM, who.tenant):
            return None
        customer = customer_of(request, who)
        if customer is None:
            return None
        message = CustomerMessage(customer, f"{customer.conversation}:{request.request_id}", result.question)
        try:
            more = await self.handoff.after_answer(message, no_knowledge=result.outcome == "no_knowledge")
        except HandoffUnavailable:
            return None
        return more.say if more.action == "started" else None

    def offer(self, request: AskRequest, who: Principal, result: AskResult) -> str | None:
        """On the bot's answer in a conversation that can go to a person: what the page sends as the
        next message when the asker, after a 👎, presses "Talk to a person" (a configured trigger,
        in the question's language). None: no offer (handoff off here, or no conversation)."""
        if not request.conversation_id or not self.handoff.covers(PLATFORM, who.tenant):
            return None
        if conversation_key(request, who) is None:
            return None
        return self.handoff.request_text(language(result.question))
