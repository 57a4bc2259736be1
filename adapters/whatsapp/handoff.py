"""WhatsApp as a customer door of a handoff (core.handoff): the customer is their own chat.

message_of()        an Incoming -> core's CustomerMessage (media as a short note: "[image]")
WhatsAppCustomer    core.handoff.CustomerChannel: an agent's reply, or the end notice, goes to
                    the customer's chat. WhatsApp has no idempotency key, so each delivery is kept
                    in core's inbox notes under its once-key: noted before the send and marked
                    sent after it, a repeat with the same key (a reclaimed Slack job, another
                    process) is not sent again. Outside the 24-hour window: the template.
"""

from __future__ import annotations

from adapters.whatsapp import render
from adapters.whatsapp.api import SendFailed, WhatsAppApi
from adapters.whatsapp.delivery import Delivery
from adapters.whatsapp.translate import PLATFORM, Incoming
from core.config import WhatsAppSettings
from core.handoff import Customer, CustomerMessage
from core.inbox import Inbox
from core.textsplit import split_text

MAX_PARTS = 4


def customer_of(incoming: Incoming, settings: WhatsAppSettings) -> Customer:
    return Customer(platform=PLATFORM, tenant=settings.tenant, conversation=incoming.user, user=incoming.user,
                    address={"to": incoming.user}, conversation_id=f"{PLATFORM}:{incoming.user}")  # fmt: skip


def message_of(incoming: Incoming, settings: WhatsAppSettings, *, text: str | None = None,
               event_id: str | None = None) -> CustomerMessage:  # fmt: skip
    customer = customer_of(incoming, settings)
    if incoming.action == "media":
        kind = "sticker" if incoming.note == "sticker" else "image" if incoming.note == "image" else "other"
        return CustomerMessage(customer, incoming.message_id, f"[{incoming.note}]", kind)  # type: ignore[arg-type]
    return CustomerMessage(customer, event_id or incoming.message_id, text or incoming.question)


class WhatsAppCustomer:
    def __init__(self, api: WhatsAppApi, delivery: Delivery, inbox: Inbox) -> None:
        self._api, self._delivery, self._inbox = api, delivery, inbox

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        parts = split_text(text, render.TEXT_LIMIT, max_parts=MAX_PARTS) or [text.strip() or "…"]
        try:
            async with self._inbox.answer(PLATFORM, f"deliver:{key}") as once:
                # The window is WhatsApp's to judge here: it refuses a free-form message outside it
                # (then the template goes instead).
                return await self._delivery.answer(customer.address["to"], [render.text(p) for p in parts], once,
                                                   since=float("inf"))  # fmt: skip
        except SendFailed:
            return False
