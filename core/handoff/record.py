"""A handoff as stored: who the customer is, where the agents see it, and when it started.

The record itself never changes after the desk message is posted; what changes (taken, the
last message, the first human reply, the end) are separate small keys in the store, each written
by one atomic step, so several processes never overwrite each other's news.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Customer(BaseModel):
    """The customer's side of a handoff, as the customer's adapter describes it.

    ``conversation`` is the platform's own conversation (a LINE chat id, a Discord channel or
    thread id, a portal conversation id): with ``platform`` and ``tenant`` it keys the handoff.
    ``address`` is whatever that platform's ``CustomerChannel`` needs to reach the customer
    (LINE: ``{"to": chat id}``), opaque to core. ``conversation_id`` is the AskRequest
    conversation id the bot used there, so the agents see the conversation so far; a door whose
    conversations belong to their asker (the portal) gives the memory key itself as ``memory_key``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    tenant: str
    conversation: str
    user: str = ""
    address: dict[str, str] = {}
    conversation_id: str | None = None
    memory_key: str | None = None  # the bot's memory of this chat, when the door knows it (the portal's asker)


class Handoff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    customer: Customer
    language: str  # "zh-TW" or "en": what the customer is told, in the words they wrote
    started_at: float
    reason: str  # "trigger" | "no_answer" | "feedback"
    started_by: str  # the event that started it (a reclaimed job finds its own handoff)
    desk_channel: str | None = None
    desk_ts: str | None = None

    @property
    def platform(self) -> str:
        return self.customer.platform

    @property
    def tenant(self) -> str:
        return self.customer.tenant
