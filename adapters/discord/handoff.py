"""Discord as a customer door of a handoff (core.handoff): the customer is a DM, a thread, or the
channel of an `/ask`.

note_of()        a sticker, image or file (no text) as the short note relayed while handed off
customer_of()    where the bot would answer (the DM, the thread) -> core's Customer
DiscordCustomer  core.handoff.CustomerChannel: an agent's reply, or the end notice, is a message
                 in that channel through the REST API, sent with a ``nonce`` derived from its
                 once-key and ``enforce_nonce`` (Discord returns the first message for a repeat
                 instead of posting a second), and noted as sent through core's relay record, so
                 a repeat later than Discord's nonce window is not sent again either
"""

from __future__ import annotations

import hashlib
import logging
from typing import Literal

import discord  # the library: `adapters/` is never on sys.path, so this is not this package
import httpx

from adapters.discord import translate
from adapters.discord.rest import Rest
from core.handoff import Customer, CustomerMessage, HandoffService
from core.handoff.notices import language
from core.schema import AskRequest
from core.textsplit import split_text

log = logging.getLogger("askhub.discord")

Kind = Literal["text", "sticker", "image", "other"]
TEXT_LIMIT = 2000  # characters per Discord message
MAX_MESSAGES = 5
NONCE_CHARS = 25  # Discord's limit


def note_of(message: discord.Message) -> tuple[Kind, str] | None:
    """A message without text, as relayed while handed off: a sticker or image as a short note
    (an image with its link, so the agent can open it), another file by its name."""
    if message.stickers:
        return "sticker", "[sticker]"
    for attachment in message.attachments:
        if (attachment.content_type or "").startswith("image/"):
            return "image", f"[image] {attachment.url}"
    if message.attachments:
        return "other", f"[file] {message.attachments[0].filename}"
    return None


def customer_of(request: AskRequest, conversation: str, channel_id: object) -> Customer:
    return Customer(platform=translate.PLATFORM, tenant=request.tenant, conversation=conversation,
                    user=request.user, address={"channel": str(channel_id)},
                    conversation_id=request.conversation_id)  # fmt: skip


def message_of(
    request: AskRequest, conversation: str, channel_id: object, event_id: str, kind: Kind = "text"
) -> CustomerMessage:
    return CustomerMessage(customer_of(request, conversation, channel_id), event_id, request.question, kind)


_SENT = {
    "en": "Sent to our team member; their reply will appear in this channel.",
    "zh-TW": "已轉給真人客服，回覆會出現在這個頻道。",
}


def sent_note(question: str) -> str:
    """What an `/ask` while handed off is answered with (the interaction must be answered)."""
    return _SENT[language(question)]


def nonce(key: str, part: int) -> str:
    return hashlib.sha256(f"{key}\x1f{part}".encode()).hexdigest()[:NONCE_CHARS]


class DiscordCustomer:
    """Posts to a channel as the bot (``Authorization: Bot``), the same REST the gateway bot uses."""

    def __init__(self, handoff: HandoffService, api_url: str, token: str) -> None:
        self._handoff = handoff
        self._url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bot {token}"}
        self._rest = Rest()

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        once = f"discord:{key}"
        if await self._handoff.store.relay_state(once) == "done":
            return True
        parts = split_text(text, TEXT_LIMIT, max_parts=MAX_MESSAGES) or [text.strip() or "…"]
        for n, part in enumerate(parts):
            body = {"content": part, "nonce": nonce(key, n), "enforce_nonce": True, "allowed_mentions": {"parse": []}}
            try:
                response = await self._rest.client.post(f"{self._url}/channels/{customer.address['channel']}/messages",
                                                  json=body, headers=self._headers)  # fmt: skip
            except httpx.HTTPError as exc:
                log.warning("handoff message not sent", extra={"exc": type(exc).__name__})
                return False
            if response.status_code >= 300:
                log.warning("handoff message refused", extra={"status": response.status_code})
                return False
        await self._handoff.store.relay_done(once)
        return True

    async def aclose(self) -> None:
        await self._rest.aclose()
