"""How an answer goes out on WhatsApp: its messages in order, each at most once, inside the window.

WhatsApp takes free-form messages only within 24 hours of the customer's last message (the
customer-service window); outside it, only an approved template (``whatsapp.window_template``),
so a question answered late — or an agent's reply after a long silence — becomes that template,
never a silent drop. WhatsApp has no idempotency key: each part is noted before it is sent and
counted once WhatsApp took it, so a worker that reclaims the job after a crash sends only what
had not gone out (a part whose send a crash cut, or a 5xx answered, is counted as sent: at most
once, and logged).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from adapters.whatsapp import render
from adapters.whatsapp.api import SendFailed, WhatsAppApi
from core.config import WhatsAppSettings
from core.inbox import Answer
from core.metrics import ADAPTER_EVENTS

log = logging.getLogger("askhub.whatsapp")

PLATFORM = "whatsapp"
WINDOW_SEC = 24 * 3600.0
WINDOW_MARGIN_SEC = 60.0  # a send that starts this close to the end may arrive after it


class Delivery:
    def __init__(self, api: WhatsAppApi, settings: WhatsAppSettings) -> None:
        self.api = api
        self.settings = settings

    def in_window(self, since: float) -> bool:
        return time.time() < since + WINDOW_SEC - WINDOW_MARGIN_SEC

    async def answer(self, to: str, messages: list[dict[str, Any]], answer: Answer, *, since: float,
                     reply_to: str | None = None) -> bool:  # fmt: skip
        """True when the customer has it (or a template in its place). Raises ``SendFailed`` when
        nothing went out and it may be tried again."""
        if answer.opened.get("template") or not self.in_window(since):
            return await self._template(to, answer)
        sending = answer.opened.get("sending")
        start = int(answer.opened.get("sent", 0))
        if sending is not None and int(sending) >= start:  # cut by a crash: it may have arrived
            log.warning("a part in flight at a crash is counted as sent", extra={"part": sending})
            start = int(sending) + 1
        for n, message in enumerate(messages[start:], start):
            await answer.note(sending=n)
            try:
                await self.api.send(to, message, reply_to=reply_to if n == 0 else None)
            except SendFailed as exc:
                if exc.outside_window:
                    return await self._template(to, answer)
                if not exc.maybe_sent:
                    if answer.visible:
                        return True  # a first part is out: the rest is not worth a repeat
                    raise
                log.warning("a part may not have arrived; not sent twice", extra={"part": n})
            answer.shown()
            await answer.note(sent=n + 1)
        return True

    async def _template(self, to: str, answer: Answer) -> bool:
        name = self.settings.window_template
        if not name:
            log.warning("outside WhatsApp's 24-hour window and no whatsapp.window_template: not answered")
            ADAPTER_EVENTS.labels(PLATFORM, "window_closed").inc()
            return True
        if answer.opened.get("template_sent"):
            return True
        await answer.note(template=True)
        await self.api.send(to, render.template(name, self.settings.template_language))
        answer.shown()
        await answer.note(template_sent=True)
        ADAPTER_EVENTS.labels(PLATFORM, "template").inc()
        return True
