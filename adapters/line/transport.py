"""LINE in and out: the webhook (verify, claim, queue, ack) and the Messaging API calls.

In: ``POST /line/webhook`` checks ``X-Line-Signature`` (base64 HMAC-SHA256 of the raw body with
the channel secret), claims every event of the batch by its ``webhookEventId`` in the shared
ledger (a redelivery of an event that was answered, or is being answered, is skipped), queues one
job per event and answers 200 at once. The answer follows from the job.

Out: the answer goes by reply token while the token is fresh (``line.reply_within_sec`` after the
event's timestamp); later, or when LINE refuses the token ("Invalid reply token": expired or
used), by push with an ``X-Line-Retry-Key`` derived from the event id, so that a push retried
after a lost response is delivered once. A reply answered with a 5xx (or not at all) may have
gone out: it is retried with the same token, and "used" then means it had. Courtesy messages
(greeting, "text only", thanks) go by reply only: they are not worth the monthly push quota.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Literal

import aiohttp
from fastapi import Request
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    Message,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.webhook import SignatureValidator
from prometheus_client import Counter
from starlette.responses import JSONResponse, Response

from core.errors import BadRequest, HubError
from core.handoff import HandoffUnavailable, Intercept, RelayFailed
from core.inbox import Answer
from core.inbox.door import Door
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS, REGISTRY
from core.retry import retrying
from core.schema import AskResult

from . import handoff, render
from .translate import Chat, Incoming, parse_event, to_request, translate

log = logging.getLogger("askhub.line")

PLATFORM = "line"
JOB = "line.event"
# The loading animation ends by itself when the answer arrives; this only bounds it if nothing does.
LOADING_SECONDS = 60
API_TIMEOUT_SEC = 10.0
REPLY_RETRY_PAUSE_SEC = 0.3
ReplyOutcome = Literal["sent", "refused", "failed", "unknown"]  # refused: token expired or used
PUSH_ATTEMPTS = 3
_RETRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "askhub:line:push")

DELIVERIES = Counter(
    "hub_line_deliveries_total",
    "LINE answers by how they went out (reply, push) and reply tokens LINE refused (expired_token)",
    ["method"],
    registry=REGISTRY,
)


def retry_key(event_id: str) -> str:
    """The push's X-Line-Retry-Key: the same UUID for every attempt at one event."""
    return str(uuid.uuid5(_RETRY_NAMESPACE, event_id))


def _invalid_token(exc: ApiException) -> bool:
    return exc.status == 400 and "invalid reply token" in str(exc.body or "").lower()


class LineApi:
    """The SDK's async Messaging API client, made on first use (it needs the running loop)."""

    def __init__(self, host: str, access_token: str) -> None:
        self._config = Configuration(host=host.rstrip("/"), access_token=access_token)
        self._client: AsyncApiClient | None = None
        self._api: AsyncMessagingApi | None = None

    @property
    def api(self) -> AsyncMessagingApi:
        if self._api is None:
            self._client = AsyncApiClient(self._config)
            self._api = AsyncMessagingApi(self._client)
        return self._api

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._api = None

    async def show_loading(self, chat_id: str) -> None:
        request = ShowLoadingAnimationRequest(chat_id=chat_id, loading_seconds=LOADING_SECONDS)
        # Short: the answer waits for it (so the animation never starts after the answer).
        await self.api.show_loading_animation(request, _request_timeout=3.0)

    async def reply(self, token: str, messages: list[Message]) -> None:
        request = ReplyMessageRequest(reply_token=token, messages=messages)
        await self.api.reply_message(request, _request_timeout=API_TIMEOUT_SEC)

    async def push(self, to: str, messages: list[Message], key: str) -> bool:
        """Push with a retry key; retried on a lost answer or a LINE 5xx. 409 means an earlier
        attempt with this key was accepted: delivered, once."""
        request = PushMessageRequest(to=to, messages=messages)
        try:
            async for attempt in retrying(_Retry, attempts=PUSH_ATTEMPTS, first_wait_sec=0.5):
                with attempt:
                    try:
                        await self.api.push_message(request, x_line_retry_key=key, _request_timeout=API_TIMEOUT_SEC)
                    except ApiException as exc:
                        if exc.status == 409:
                            return True
                        if exc.status is None or exc.status >= 500:
                            raise _Retry(f"status {exc.status}") from exc
                        log.warning("push refused", extra={"status": exc.status})
                        return False
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        raise _Retry(type(exc).__name__) from exc
        except _Retry as exc:
            log.warning("push failed", extra={"exc": str(exc)})
            return False
        return True


class _Retry(Exception):
    """A push whose outcome is unknown (5xx, lost answer): retried with the same key."""


class LineBot:
    def __init__(self, door: Door, channel_secret: str, access_token: str) -> None:
        self.door = door
        self._validator = SignatureValidator(channel_secret)
        self.api = LineApi(door.settings.line_api_url, access_token)

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
            if got.action == "started":  # no model call: the customer is told a person will answer
                return await self._deliver(incoming, incoming.chat, [TextMessage(text=got.say or "")], answer)
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
            messages = render.thanks(fb.language)
        elif incoming.action == "greet":
            messages = render.greeting(settings.group_prefixes)
        else:
            messages = render.text_only()
        sent = await self._try_reply(incoming, messages)
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
        sent = await self._deliver(incoming, chat, messages, answer)
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

    # -- out -------------------------------------------------------------------------------------

    async def _deliver(self, incoming: Incoming, chat: Chat, messages: list[Message], answer: Answer) -> bool:
        """By reply while the token is fresh, else by push (whose retry key makes a repeat harmless).

        A worker that died during the reply leaves a note: LINE cannot say whether that reply went
        out, so the token is tried again (refused then as used: it had) and, once stale, nothing
        more is sent — one answer or, rarely, none, never two."""
        if answer.opened.get("reply"):
            if not self._fresh(incoming):
                log.warning("an earlier attempt's reply may have gone out; not pushing a second answer",
                            extra={"event_id": incoming.event_id})  # fmt: skip
                return True
            if await self._reply_once(incoming, messages) in ("sent", "refused"):
                DELIVERIES.labels("reply").inc()
                return True
        elif self._fresh(incoming):
            await answer.note(reply=True)
            if await self._try_reply(incoming, messages):
                return True
        if await self.api.push(chat.id, messages, retry_key(incoming.event_id)):
            DELIVERIES.labels("push").inc()
            return True
        return False

    def _fresh(self, incoming: Incoming) -> bool:
        deadline = incoming.timestamp_ms / 1000 + self.door.settings.line.reply_within_sec
        return incoming.reply_token is not None and time.time() < deadline

    async def _try_reply(self, incoming: Incoming, messages: list[Message]) -> bool:
        """True when the reply went out. A LINE 5xx or a lost answer leaves that unknown, and a
        reply has no retry key, so the token is tried once more while fresh: refused then as
        used, the first attempt had gone out, and no push follows to say it twice."""
        if not self._fresh(incoming):
            return False
        outcome = await self._reply_once(incoming, messages)
        if outcome == "unknown" and self._fresh(incoming):
            await asyncio.sleep(REPLY_RETRY_PAUSE_SEC)
            outcome = await self._reply_once(incoming, messages)
            if outcome == "refused":
                log.info("the first reply had gone out", extra={"event_id": incoming.event_id})
                outcome = "sent"
        elif outcome == "refused":
            DELIVERIES.labels("expired_token").inc()
        if outcome != "sent":
            return False
        DELIVERIES.labels("reply").inc()
        return True

    async def _reply_once(self, incoming: Incoming, messages: list[Message]) -> ReplyOutcome:
        assert incoming.reply_token is not None
        try:
            await self.api.reply(incoming.reply_token, messages)
            return "sent"
        except ApiException as exc:
            if _invalid_token(exc):
                log.info("reply token refused", extra={"event_id": incoming.event_id})
                return "refused"
            log.warning("reply failed", extra={"event_id": incoming.event_id, "status": exc.status})
            return "unknown" if exc.status is None or exc.status >= 500 else "failed"
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("reply failed", extra={"event_id": incoming.event_id, "exc": type(exc).__name__})
            return "unknown"
