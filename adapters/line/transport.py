"""LINE in: the webhook (verify, claim, queue, ack) and the job that answers one event.

``POST /line/webhook`` checks ``X-Line-Signature`` (base64 HMAC-SHA256 of the raw body with
the channel secret), claims every event of the batch by its ``webhookEventId`` in the core inbox
(a redelivery of an event that was answered, or is being answered, is skipped), queues one job
per event and answers 200 at once. The job translates the event, asks the core, and hands the
messages to ``delivery.py`` (reply while the token is fresh, else push) over ``api.py``.
While a one-to-one chat is handed to a person (core.handoff, ``handoff.py``), its messages go to
the agents instead and the bot says nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import aiohttp
from fastapi import Request
from linebot.v3.messaging import ApiException, Message, TextMessage
from linebot.v3.webhook import SignatureValidator
from starlette.responses import JSONResponse, Response

from adapters.line import handoff, render
from adapters.line.api import LineApi
from adapters.line.delivery import Delivery
from adapters.line.translate import Chat, Incoming, parse_event, to_request, translate
from core.errors import BadRequest, HubError
from core.handoff import HandoffUnavailable, Intercept, RelayFailed
from core.inbox import Answer
from core.inbox.door import Door
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS
from core.schema import AskResult

log = logging.getLogger("askhub.line")

PLATFORM = "line"
JOB = "line.event"


class LineBot:
    def __init__(self, door: Door, channel_secret: str, access_token: str) -> None:
        self.door = door
        self._validator = SignatureValidator(channel_secret)
        self.api = LineApi(door.settings.line_api_url, access_token)
        self.delivery = Delivery(self.api, door.settings)

    # -- in ------------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        signature = request.headers.get("x-line-signature", "")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8") from None
        if not signature or not self._validator.validate(text, signature):
            raise BadRequest("missing or invalid X-Line-Signature")
        try:
            payload = json.loads(text)
            events = payload["events"]
            if not isinstance(events, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise BadRequest("the body is not a LINE webhook payload") from None
        destination = payload.get("destination")
        for raw in events:
            await self._accept(raw, destination if isinstance(destination, str) else None)
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)
        return JSONResponse({})

    async def _accept(self, raw: Any, destination: str | None) -> None:
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        event_id = raw.get("webhookEventId") if isinstance(raw, dict) else None
        if not isinstance(event_id, str) or not event_id:
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        # Cannot be queued: LINE gets a 503 and redelivers; later events of the batch were not claimed.
        if not await self.door.inbox.accept(PLATFORM, event_id, JOB, {"event": raw, "destination": destination}):
            redelivery = bool((raw.get("deliveryContext") or {}).get("isRedelivery"))
            log.info("duplicate event skipped", extra={"event_id": event_id, "redelivery": redelivery})
            ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()

    # -- the job: one event ----------------------------------------------------------------------

    async def handle(self, payload: dict[str, Any]) -> None:
        raw = payload["event"]
        event_id = raw["webhookEventId"]
        async with self.door.inbox.answer(PLATFORM, event_id) as answer:
            try:
                event = parse_event(raw)
                if event is None:
                    incoming = Incoming("ignore", event_id, 0, why="unknown_type")
                else:
                    incoming = translate(event, self.door.settings.line, payload.get("destination"))
                delivered = await self._act(incoming, answer)
            except RelayFailed:
                raise  # handed off, not relayed yet: the job fails and the queue delivers it again
            except Exception as exc:
                log.error("event failed", extra={"event_id": event_id, "exc": type(exc).__name__})
                delivered = False
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            if delivered:
                answer.shown()
            else:
                answer.give_back()  # a later delivery may answer it

    async def _act(self, incoming: Incoming, answer: Answer) -> bool:
        """Handle one event; True when it is finished (answered, or nothing to answer)."""
        settings = self.door.settings.line
        if incoming.action == "ignore" or incoming.chat is None:
            log.info("event ignored", extra={"event_id": incoming.event_id, "why": incoming.why})
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return True
        if incoming.action in ("ask", "text_only") and incoming.chat.one_to_one and self.door.handoff.enabled:
            got = await self._handoff(incoming)
            if got.action == "relayed":  # the agents have it; the bot stays silent
                ADAPTER_EVENTS.labels(PLATFORM, "handed_off").inc()
                return True
            if got.action in ("started", "limited"):  # no model call: a person will answer / too many messages
                return await self.delivery.answer(incoming, incoming.chat, [TextMessage(text=got.say or "")], answer)
        if incoming.action == "ask":
            return await self._answer(incoming, incoming.chat, answer)
        if incoming.action == "feedback":
            fb = incoming.feedback
            assert fb is not None
            await self.door.feedback.record(
                fb.request_id,
                fb.rating,
                platform=PLATFORM,
                user=incoming.chat.user or incoming.chat.id,
                tenant=settings.tenant,
            )
            one_to_one = incoming.chat.one_to_one  # handed off only there
            offer = fb.rating == "down" and one_to_one and self.door.handoff.covers(PLATFORM, settings.tenant)
            person = self.door.handoff.request_text(fb.language) if offer else None
            messages = render.thanks(fb.language, person=person)  # after a 👎: a person, one tap away
        elif incoming.action == "greet":
            messages = render.greeting(settings.group_prefixes)
        else:
            messages = render.text_only()
        sent = await self.delivery.courtesy(incoming, messages)
        ADAPTER_EVENTS.labels(PLATFORM, "answered" if sent else "failed").inc()
        return True  # a courtesy message is not worth a redelivery

    async def _handoff(self, incoming: Incoming) -> Intercept:
        try:
            return await self.door.handoff.intercept(handoff.message_of(incoming, self.door.settings.line))
        except HandoffUnavailable:  # Slack cannot take it now: the bot answers instead
            return Intercept("bot")

    async def _after_answer(self, incoming: Incoming, result: AskResult, messages: list[Message]) -> list[Message]:
        """The second "I don't know" in a row may start a handoff (when configured): say so too."""
        if not (self.door.handoff.enabled and incoming.chat and incoming.chat.one_to_one):
            return messages
        try:
            more = await self.door.handoff.after_answer(handoff.message_of(incoming, self.door.settings.line),
                                                        no_knowledge=result.outcome == "no_knowledge")  # fmt: skip
        except HandoffUnavailable:
            return messages
        if more.action != "started":
            return messages
        return [*messages[: render.MAX_MESSAGES - 1], TextMessage(text=more.say or "")]

    async def _answer(self, incoming: Incoming, chat: Chat, answer: Answer) -> bool:
        request_id = uuid.uuid4().hex
        loading = asyncio.create_task(self._show_loading(chat)) if chat.one_to_one else None
        answered = False
        try:
            result = await self.door.asker.ask(to_request(incoming, self.door.settings.line, request_id))
            messages = await self._after_answer(incoming, result, render.answer_messages(result))
            answered = True
        except Exception as exc:  # every failure still gets a short, polite message
            if not isinstance(exc, HubError):
                log.error("ask failed", extra={"event_id": incoming.event_id, "exc": type(exc).__name__})
            messages = render.error_messages(exc, incoming.question, request_id)
        if loading is not None:
            await loading
        sent = await self.delivery.answer(incoming, chat, messages, answer)
        outcome = "answered" if sent and answered else "failed"
        log.info(
            "event handled",
            extra={"event_id": incoming.event_id, "request_id": request_id, "outcome": outcome},
        )
        ADAPTER_EVENTS.labels(PLATFORM, outcome).inc()
        return sent

    async def _show_loading(self, chat: Chat) -> None:
        try:
            await self.api.show_loading(chat.id)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.info("loading animation not shown", extra={"exc": type(exc).__name__})
