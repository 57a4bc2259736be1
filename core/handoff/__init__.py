"""Handing a customer to a person: a customer on LINE (Discord, the portal) gets an agent in Slack.

    record.py    the handoff as stored (Customer: who and where; Handoff: the case)
    store.py     handoffs on the state backend, keyed by platform + tenant + conversation,
                 with a reverse index from the desk's channel + thread ts
    triggers.py  "真人", "human", "talk to a person" … (case- and width-insensitive)
    notices.py   what the customer is told (zh-TW or English), in their language
    summary.py   the conversation so far, and an LLM summary of it when a model is configured
    telemetry.py askhub.audit lines and the hub_handoffs_* metrics
    ports.py     the Protocols the platforms implement: Desk (Slack) and CustomerChannel
    service.py   HandoffService: start, relay both ways, take, resolve, idle close

How a customer platform plugs in (stable: Discord and the portal follow the same steps as LINE,
see adapters/line/handoff.py):

1. Implement ``core.handoff.ports.CustomerChannel``::

       class MyChannel:
           async def deliver(self, customer: Customer, text: str, *, key: str) -> bool:
               # show ``text`` to the customer at ``customer.address`` at most once per ``key``
               # (a repeat with the same key after a crash must not show it twice)

   and register it when the adapter loads: ``door.handoff.register_customer("discord", MyChannel(...))``.
   It is used for agents' replies (key ``out:<desk event>``) and the end notice (``end:<id>``).

2. In the job that answers a customer's message, before asking the bot::

       customer = Customer(platform="discord", tenant=tenant, conversation=<channel or thread id>,
                           user=<platform user id>, address={...what deliver needs...},
                           conversation_id=<the AskRequest conversation_id the bot uses there>)
       got = await door.handoff.intercept(CustomerMessage(customer, event_id, text, kind="text"))
       if got.action == "relayed": done — the agents have it; the bot says nothing
       if got.action == "started": show ``got.say`` to the customer the usual way; no model call
       else ("bot"): answer as usual, then (optionally)
           more = await door.handoff.after_answer(message, no_knowledge=result.outcome == "no_knowledge")
           and show ``more.say`` too when ``more.action == "started"``

   Stickers, images and files: ``kind="sticker"`` / ``"image"`` / ``"other"`` with a short note as
   ``text`` ("[sticker]", "[image] <url>"): relayed while handed off, never a trigger.
   A 👎 with a comment: ``door.handoff.on_feedback(customer, event_id, "down", comment)``.
   A 👎 may offer a "Talk to a person" button when ``door.handoff.covers(platform, tenant)``
   (``handoff.doors`` / ``handoff.tenants``); pressed, ``door.handoff.on_request(message)`` with
   ``message.text = door.handoff.request_text(language)`` and an event id of the button (not of
   the press): every press of it is the same handoff, and one started otherwise is not relayed to.

3. Errors: ``HandoffUnavailable`` (Slack could not take a new handoff) — answer with the bot as
   usual; ``RelayFailed`` — let the job fail (re-raise) so the queue delivers it again; the
   relay's once-key makes the retry safe.

``door.handoff.enabled`` is False without the YAML ``handoff`` section or without
SLACK_BOT_TOKEN; then ``intercept`` always says "bot".
"""

from core.handoff.ports import CustomerChannel, Desk, DeskRef, Opening, Status
from core.handoff.record import Customer, Handoff
from core.handoff.service import (
    CustomerMessage,
    HandoffService,
    HandoffUnavailable,
    Intercept,
    RelayFailed,
)

__all__ = [
    "Customer",
    "CustomerChannel",
    "CustomerMessage",
    "Desk",
    "DeskRef",
    "Handoff",
    "HandoffService",
    "HandoffUnavailable",
    "Intercept",
    "Opening",
    "RelayFailed",
    "Status",
]
