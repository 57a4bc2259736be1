"""The WhatsApp door: ``GET /whatsapp/webhook`` (Meta's verification challenge) and
``POST /whatsapp/webhook`` (messages), and the ``whatsapp.message`` job that answers one message.

The POST is checked against ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app
secret, compared in constant time; 401 otherwise), then every message of the batch is claimed by
its id and queued, and WhatsApp gets 200 at once. Statuses (sent, delivered, read) are counted
and dropped. The job translates, asks core, and sends through ``delivery.py``; while the customer
is handed to a person (core.handoff, ``handoff.py``) their messages go to the agents instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from adapters.whatsapp import handoff, render
from adapters.whatsapp.api import SendFailed, WhatsAppApi
from adapters.whatsapp.delivery import Delivery
from adapters.whatsapp.translate import PLATFORM, Incoming, messages_of, to_request, translate
from core.errors import BadRequest, Forbidden, HubError, Unauthorized
from core.handoff import HandoffUnavailable, Intercept, RelayFailed
from core.inbox import Answer
from core.inbox.door import Door
from core.llm.prompt import language_of
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS

log = logging.getLogger("askhub.whatsapp")

JOB = "whatsapp.message"


class WhatsAppBot:
    def __init__(self, door: Door, *, access_token: str, app_secret: str, verify_token: str,
                 phone_number_id: str) -> None:  # fmt: skip
        self.door = door
        self._secret = app_secret.encode()
        self._verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.api = WhatsAppApi(door.settings.whatsapp_api_url, access_token, phone_number_id)
        self.delivery = Delivery(self.api, door.settings.whatsapp)

    # -- in ------------------------------------------------------------------------------------

    async def verify(self, request: Request) -> Response:
        """Meta's subscription check: echo ``hub.challenge`` when the verify token matches."""
        q = request.query_params
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") != "subscribe" or not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            raise Forbidden("hub.mode or hub.verify_token does not match")
        return PlainTextResponse(q.get("hub.challenge", ""))

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        if not self.signed(body, request.headers.get("x-hub-signature-256", "")):
            raise Unauthorized("missing or invalid X-Hub-Signature-256")
        try:
            raws = messages_of(json.loads(body), self.phone_number_id)
        except ValueError:  # JSONDecodeError is one
            raise BadRequest("the body is not a WhatsApp Business webhook payload") from None
        for raw in raws:
            await self._accept(raw)
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)
        return JSONResponse({})

    def signed(self, body: bytes, header: str) -> bool:
        if not header.startswith("sha256="):
            return False
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())

    async def _accept(self, raw: dict[str, Any]) -> None:
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        if not await self.door.inbox.accept(PLATFORM, str(raw["id"]), JOB, {"message": raw}):
            log.info("duplicate message skipped", extra={"event_id": raw["id"]})
            ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()

    # -- the job: one message --------------------------------------------------------------------

    async def handle(self, payload: dict[str, Any]) -> None:
        incoming = translate(payload["message"])
        async with self.door.inbox.answer(PLATFORM, incoming.message_id) as answer:
            try:
                delivered = await self._act(incoming, answer)
            except (RelayFailed, SendFailed):
                if answer.visible:
                    return
                raise  # nothing reached the customer: the queue runs the job again
            except Exception as exc:
                log.error("message failed", extra={"event_id": incoming.message_id, "exc": type(exc).__name__})
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
                delivered = False
            if delivered:
                answer.shown()
            else:
                answer.give_back()

    async def _act(self, incoming: Incoming, answer: Answer) -> bool:
        settings = self.door.settings.whatsapp
        if incoming.action == "ignore":
            log.info("message ignored", extra={"event_id": incoming.message_id, "why": incoming.why})
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return True
        if self.door.handoff.enabled and incoming.action in ("ask", "media", "person"):
            got = await self._handoff(incoming)
            if got.action == "relayed":
                ADAPTER_EVENTS.labels(PLATFORM, "handed_off").inc()
                return True
            if got.action == "started":
                return await self._send(incoming, render.notice(got.say or ""), answer)
        if incoming.action == "ask":
            return await self._answer(incoming, answer)
        if incoming.action == "feedback":
            fb = incoming.feedback
            assert fb is not None
            await self.door.feedback.record(fb.request_id, fb.rating, platform=PLATFORM, user=incoming.user,
                                            tenant=settings.tenant)  # fmt: skip
            offer = fb.rating == "down" and self._person_offered()
            messages = render.thanks(fb.language, person=fb.request_id if offer else None)
        elif incoming.action == "person":  # a person cannot take it (handoff off): the bot says so
            messages = render.notice(self._no_person(incoming.language))
        else:
            messages = render.media_note()
        sent = await self._send(incoming, messages, answer)
        ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()
        return sent

    def _person_offered(self) -> bool:
        return self.door.handoff.covers(PLATFORM, self.door.settings.whatsapp.tenant)

    @staticmethod
    def _no_person(language: str) -> str:
        if language == "zh-TW":
            return "目前無法轉接真人客服，請直接輸入你的問題，我會盡力回答。"
        return "No one can take the chat right now; please type your question and I will do my best."

    async def _send(self, incoming: Incoming, messages: list[dict[str, Any]], answer: Answer) -> bool:
        return await self.delivery.answer(incoming.user, messages, answer, since=incoming.timestamp,
                                          reply_to=incoming.message_id)  # fmt: skip

    async def _handoff(self, incoming: Incoming) -> Intercept:
        settings = self.door.settings.whatsapp
        if incoming.action == "person":
            text = self.door.handoff.request_text(incoming.language)
            # The button's id, not the press's: every press of it is the same request.
            message = handoff.message_of(incoming, settings, text=text, event_id=f"person:{incoming.button}")
            try:
                return await self.door.handoff.on_request(message)
            except HandoffUnavailable:
                return Intercept("bot")
        try:
            return await self.door.handoff.intercept(handoff.message_of(incoming, settings))
        except HandoffUnavailable:
            return Intercept("bot")

    async def _answer(self, incoming: Incoming, answer: Answer) -> bool:
        request_id = uuid.uuid4().hex
        if not answer.opened:
            await self.api.mark_read(incoming.message_id)
        await answer.note(asking=True)
        answered = False
        try:
            result = await self.door.asker.ask(to_request(incoming, self.door.settings.whatsapp, request_id))
            messages = render.answer_messages(result, person=self._person_offered())
            messages += await self._after_answer(incoming, result.outcome == "no_knowledge")
            answered = True
        except Exception as exc:  # every failure still gets a short, polite message
            if not isinstance(exc, HubError):
                log.error("ask failed", extra={"event_id": incoming.message_id, "exc": type(exc).__name__})
            messages = render.error_messages(exc, incoming.question, request_id)
        sent = await self._send(incoming, messages, answer)
        outcome = "answered" if sent and answered else "failed"
        log.info("message handled", extra={"event_id": incoming.message_id, "request_id": request_id,
                                           "outcome": outcome, "language": language_of(incoming.question)})  # fmt: skip
        ADAPTER_EVENTS.labels(PLATFORM, outcome).inc()
        return sent

    async def _after_answer(self, incoming: Incoming, no_knowledge: bool) -> list[dict[str, Any]]:
        """The second "I don't know" in a row may start a handoff (when configured): say so too."""
        if not self.door.handoff.enabled:
            return []
        try:
            more = await self.door.handoff.after_answer(handoff.message_of(incoming, self.door.settings.whatsapp),
                                                        no_knowledge=no_knowledge)  # fmt: skip
        except HandoffUnavailable:
            return []
        return render.notice(more.say or "") if more.action == "started" else []
