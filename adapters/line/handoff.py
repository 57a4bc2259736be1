"""LINE as a customer door of a handoff (core.handoff): the customer is a one-to-one chat.

message_of()     an Incoming (text, sticker, image …) -> core's CustomerMessage
LineCustomer     core.handoff.CustomerChannel: an agent's reply, or the end notice, goes to
                 the user by push with an ``X-Line-Retry-Key`` derived from its once-key
                 (the desk's message id), so a push repeated after a crash, or by another
                 process, is delivered once (LINE answers the repeat 409)
"""

from __future__ import annotations

from linebot.v3.messaging import TextMessage

from adapters.line.api import retry_key
from adapters.line.translate import Incoming
from core.config import LineSettings
from core.handoff import Customer, CustomerMessage
from core.textsplit import split_text, utf16_len

TEXT_LIMIT = 5000
MAX_MESSAGES = 5


def customer_of(incoming: Incoming, settings: LineSettings) -> Customer:
    chat = incoming.chat
    assert chat is not None
    return Customer(platform="line", tenant=settings.tenant, conversation=chat.id, user=chat.user or chat.id,
                    address={"to": chat.id}, conversation_id=f"line:{chat.id}")  # fmt: skip


def message_of(incoming: Incoming, settings: LineSettings) -> CustomerMessage:
    if incoming.action == "ask":
        return CustomerMessage(customer_of(incoming, settings), incoming.event_id, incoming.question)
    kind = incoming.note if incoming.note in ("sticker", "image") else "other"
    return CustomerMessage(customer_of(incoming, settings), incoming.event_id, f"[{incoming.note or 'message'}]",
                           kind)  # type: ignore[arg-type]  # fmt: skip


def text_messages(text: str) -> list[TextMessage]:
    parts = split_text(text, TEXT_LIMIT, measure=utf16_len, max_parts=MAX_MESSAGES) or [text.strip() or "…"]
    return [TextMessage(text=part) for part in parts]


class LineCustomer:
    def __init__(self, push: object) -> None:
        self._push = push  # LineApi.push(to, messages, key) -> bool

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        return bool(await self._push(customer.address["to"], text_messages(text), retry_key(key)))  # type: ignore[operator]
