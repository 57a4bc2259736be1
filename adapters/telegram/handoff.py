"""Telegram as a customer door of a handoff (core.handoff): a private chat with the bot.

message_of()        an Incoming -> core's CustomerMessage (a photo or voice note as "[photo]" …)
TelegramCustomer    core.handoff.CustomerChannel: an agent's reply, or the end notice, goes to the
                    chat. The Bot API has no idempotency key, so each delivery is kept in core's
                    inbox notes under its once-key: noted before it is sent, a repeat with the same
                    key (a reclaimed Slack job, another process) is not sent again.
"""

from __future__ import annotations

from telegram.error import TelegramError

from adapters.telegram.api import TelegramApi
from adapters.telegram.render import TEXT_LIMIT, Out
from adapters.telegram.translate import PLATFORM, Incoming, conversation_id
from core.config import TelegramSettings
from core.handoff import Customer, CustomerMessage
from core.inbox import Inbox
from core.textsplit import split_text


def customer_of(incoming: Incoming, settings: TelegramSettings) -> Customer:
    return Customer(platform=PLATFORM, tenant=settings.tenant, conversation=str(incoming.chat_id),
                    user=incoming.user, address={"chat_id": str(incoming.chat_id)},
                    conversation_id=conversation_id(incoming))  # fmt: skip


def message_of(incoming: Incoming, settings: TelegramSettings, *, text: str | None = None,
               event_id: str | None = None) -> CustomerMessage:  # fmt: skip
    customer = customer_of(incoming, settings)
    if incoming.action == "media":
        kind = "sticker" if incoming.note == "sticker" else "image" if incoming.note == "photo" else "other"
        return CustomerMessage(customer, str(incoming.update_id), f"[{incoming.note}]", kind)  # type: ignore[arg-type]
    return CustomerMessage(customer, event_id or str(incoming.update_id), text or incoming.question)


class TelegramCustomer:
    def __init__(self, api: TelegramApi, inbox: Inbox) -> None:
        self._api, self._inbox = api, inbox

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        parts = split_text(text, TEXT_LIMIT, max_parts=4) or [text.strip() or "…"]
        async with self._inbox.answer(PLATFORM, f"deliver:{key}") as once:
            start = int(once.opened.get("sending", -1)) + 1  # a part in flight at a crash counts as sent
            for n, part in enumerate(parts[start:], start):
                await once.note(sending=n)
                try:
                    await self._api.send(int(customer.address["chat_id"]), Out(part))
                except TelegramError:
                    if not once.visible:
                        once.give_back()
                        return False
                    return True
                once.shown()
            return True
