"""The Telegram door: ``POST /telegram/webhook`` and the ``telegram.update`` job.

The webhook is checked against ``X-Telegram-Bot-Api-Secret-Token`` (the secret given to
setWebhook, compared in constant time; 401 otherwise), the update claimed by its ``update_id``
and queued, and Telegram gets 200 at once. The job translates, and for a question shows "💭 …" at
once (in reply to the question in a group), edits it as the answer grows — at most once per
``telegram.progress_interval_sec``, under Telegram's limit for edits — and finishes it with the
answer, its sources and 👍 / 👎. The placeholder and each further part are noted before they are
sent, so a worker that reclaims the job after a crash finishes that message instead of sending a
second. A private chat handed to a person (core.handoff, ``handoff.py``) goes to the agents.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response
from telegram import Update
from telegram.error import TelegramError

from adapters.telegram import handoff, render
from adapters.telegram.api import TelegramApi
from adapters.telegram.render import Out
from adapters.telegram.translate import PLATFORM, Incoming, to_request, translate
from core.ask import Delta
from core.errors import BadRequest, HubError, Unauthorized
from core.handoff import HandoffUnavailable, Intercept, RelayFailed
from core.inbox import Answer
from core.inbox.door import Door
from core.messages import polite
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS
from core.progress import Progress
from core.schema import AskResult

log = logging.getLogger("askhub.telegram")

JOB = "telegram.update"


class TelegramBot:
    def __init__(self, door: Door, token: str, secret_token: str) -> None:
        self.door = door
        self._secret = secret_token.encode()
        self.api = TelegramApi(door.settings.telegram_api_url, token)

    # -- in ------------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
        if not given or not hmac.compare_digest(given, self._secret):
            raise Unauthorized("missing or invalid X-Telegram-Bot-Api-Secret-Token")
        try:
            data = json.loads(await request.body())
            update_id = data["update_id"]
            if not isinstance(update_id, int):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise BadRequest("the body is not a Telegram update") from None
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        if not await self.door.inbox.accept(PLATFORM, str(update_id), JOB, {"update": data}):
            log.info("duplicate update skipped", extra={"event_id": update_id})
            ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)
        return JSONResponse({})

    # -- the job: one update ---------------------------------------------------------------------

    async def handle(self, payload: dict[str, Any]) -> None:
        me = await self.api.me()
        update = Update.de_json(payload["update"], self.api.bot)
        incoming = translate(update, me)
        async with self.door.inbox.answer(PLATFORM, str(incoming.update_id)) as answer:
            try:
                await self._act(incoming, answer, me.username)
            except RelayFailed:
                raise  # handed off, not relayed yet: the queue runs the job again
            except TelegramError as exc:
                log.error("telegram send failed", extra={"event_id": incoming.update_id, "exc": type(exc).__name__})
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
                if not answer.visible:
                    raise  # nothing reached the chat: the queue runs the job again
                return
            answer.shown()

    async def _act(self, incoming: Incoming, answer: Answer, username: str) -> None:
        settings = self.door.settings.telegram
        if incoming.action == "ignore":
            log.info("update ignored", extra={"event_id": incoming.update_id, "why": incoming.why})
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        if incoming.private and self.door.handoff.enabled and incoming.action in ("ask", "media", "person"):
            got = await self._handoff(incoming)
            if got.action == "relayed":
                ADAPTER_EVENTS.labels(PLATFORM, "handed_off").inc()
                if incoming.callback_id:
                    await self.api.toast(incoming.callback_id, "")
                return
            if got.action == "started":
                if incoming.callback_id:
                    await self.api.toast(incoming.callback_id, "")
                await self._say(incoming, render.text(got.say or ""), answer)
                return
        if incoming.action == "ask":
            await self._answer(incoming, answer)
            return
        if incoming.action == "feedback":
            fb = incoming.feedback
            assert fb is not None
            await self.door.feedback.record(fb.request_id, fb.rating, platform=PLATFORM, user=incoming.user,
                                            tenant=settings.tenant)  # fmt: skip
            await self.api.toast(incoming.callback_id, render.thanks(fb.language))
            if fb.rating == "down" and incoming.private and self._person_offered():
                await self._say(incoming, render.offer_person(fb.language, fb.request_id), answer)
        elif incoming.action == "person":
            await self.api.toast(incoming.callback_id, "")
        elif incoming.action == "greet":
            await self._say(incoming, render.greeting(username), answer)
        else:
            await self._say(incoming, render.media_note(), answer)
        ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()

    def _person_offered(self) -> bool:
        return self.door.handoff.covers(PLATFORM, self.door.settings.telegram.tenant)

    async def _say(self, incoming: Incoming, outs: list[Out], answer: Answer) -> None:
        """Short messages, each noted before it is sent (never twice after a crash)."""
        for n, out in enumerate(outs):
            if n < int(answer.opened.get("said", 0)):
                continue
            await answer.note(said=n + 1)
            await self.api.send(incoming.chat_id, out, reply_to=None if incoming.private else incoming.message_id,
                                thread=incoming.thread_id)  # fmt: skip
            answer.shown()

    async def _handoff(self, incoming: Incoming) -> Intercept:
        settings = self.door.settings.telegram
        try:
            if incoming.action == "person":
                text = self.door.handoff.request_text(incoming.language)
                return await self.door.handoff.on_request(
                    handoff.message_of(incoming, settings, text=text, event_id=f"person:{incoming.button}")
                )
            return await self.door.handoff.intercept(handoff.message_of(incoming, settings))
        except HandoffUnavailable:  # the desk cannot take it now: the bot answers
            return Intercept("bot")

    # -- a question: a placeholder, edited as the answer grows, then the answer -------------------

    async def _answer(self, incoming: Incoming, answer: Answer) -> None:
        request = to_request(incoming, self.door.settings.telegram, uuid.uuid4().hex)
        chat, reply_to = incoming.chat_id, None if incoming.private else incoming.message_id
        shown_at = 0.0
        interval = self.door.settings.telegram.progress_interval_sec
        if answer.opened.get("progress"):  # an attempt that died had shown it: finish that message
            placeholder = int(answer.opened["progress"])
        else:
            if answer.opened.get("sending"):
                log.warning("the placeholder of a crashed attempt was not noted; sending another",
                            extra={"event_id": incoming.update_id})  # fmt: skip
            await answer.note(sending=True)
            sent = await self.api.send(chat, Out(render.THINKING), reply_to=reply_to, thread=incoming.thread_id)
            placeholder, shown_at = sent.message_id, time.monotonic()
            answer.shown()
            await answer.note(progress=placeholder)

        async def show(text: str) -> None:
            nonlocal shown_at
            if time.monotonic() - shown_at < interval:
                return  # too soon after the placeholder: the next growth or the final edit shows it
            shown_at = time.monotonic()
            await self.api.edit(chat, placeholder, Out(render.progress(text)), final=False)

        grown = Progress(show, interval=interval)
        text, result = "", None
        try:
            async for event in self.door.asker.stream(request):
                if isinstance(event, Delta):
                    text += event.text
                    await grown.push(text)
                else:
                    result = event
            assert result is not None
            outs = render.answer_messages(result, person=incoming.private and self._person_offered())
            outs += await self._after_answer(incoming, result)
        except HubError as exc:
            outs = render.error_message(exc, request.question, request.request_id)
        except TelegramError:
            raise
        except Exception as exc:
            log.error("ask failed", extra={"request_id": request.request_id, "exc": type(exc).__name__})
            outs = render.text(polite("error", request_id=request.request_id))
        wait = interval - (time.monotonic() - shown_at)
        if wait > 0:  # Telegram's pace for edits of one message
            await asyncio.sleep(wait)
        await self.api.edit(chat, placeholder, outs[0])
        for n, out in enumerate(outs[1:], 1):
            if n <= int(answer.opened.get("parts", 0)):
                continue  # sent, or in flight, when an attempt died: never twice
            await answer.note(parts=n)
            await self.api.send(chat, out, thread=incoming.thread_id)
        ADAPTER_EVENTS.labels(PLATFORM, "answered" if result is not None else "failed").inc()

    async def _after_answer(self, incoming: Incoming, result: AskResult) -> list[Out]:
        """The second "I don't know" in a row may start a handoff (when configured): say so too."""
        if not (incoming.private and self.door.handoff.enabled):
            return []
        try:
            more = await self.door.handoff.after_answer(handoff.message_of(incoming, self.door.settings.telegram),
                                                        no_knowledge=result.outcome == "no_knowledge")  # fmt: skip
        except HandoffUnavailable:
            return []
        return render.text(more.say or "") if more.action == "started" else []
