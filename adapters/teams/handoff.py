"""Teams as a customer door of a handoff (core.handoff): a personal chat with the bot.

customer_of()   an Incoming -> core's Customer, with the conversation reference kept in its
                address (service URL and conversation id): what a proactive message needs
TeamsCustomer   core.handoff.CustomerChannel: an agent's reply, or the end notice, is sent into
                the chat proactively (not as a reply: nothing to reply to). The Bot Connector has
                no idempotency key, so a repeat with the same once-key is suppressed only within
                this process; a crash between the send and core recording it may show it twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from adapters.teams import render
from adapters.teams.connector import Connector, ConnectorError
from adapters.teams.translate import PLATFORM, Incoming
from core.handoff import Customer, CustomerMessage
from core.textsplit import split_text

log = logging.getLogger("askhub.teams")

RECENT_KEYS = 10_000


def customer_of(incoming: Incoming) -> Customer:
    where = incoming.where
    assert where is not None
    return Customer(platform=PLATFORM, tenant=incoming.tenant, conversation=where.conversation, user=incoming.user,
                    address={"service_url": where.service_url, "conversation": where.conversation},
                    conversation_id=f"teams:{where.conversation}")  # fmt: skip


def message_of(incoming: Incoming) -> CustomerMessage:
    return CustomerMessage(customer_of(incoming), incoming.event_id, incoming.question)


class TeamsCustomer:
    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._sent: OrderedDict[str, None] = OrderedDict()

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
        if key in self._sent:
            return True
        address = customer.address
        parts = split_text(text, render.TEXT_BYTES, measure=render.json_bytes) or [text.strip() or "…"]
        try:
            for part in parts:
                await self._connector.send(address["service_url"], address["conversation"], render.message(part))
        except (ConnectorError, KeyError) as exc:
            log.warning("message to a Teams customer not sent", extra={"exc": type(exc).__name__})
            return False
        self._sent[key] = None
        while len(self._sent) > RECENT_KEYS:
            self._sent.popitem(last=False)
        return True
