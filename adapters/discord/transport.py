"""Receiving from Discord: the HTTP interactions endpoint, and answering interactions later.

``POST /discord/interactions`` verifies Discord's Ed25519 signature (over timestamp + raw body),
answers PING with PONG, acknowledges `/ask` with a deferred response (type 5) at once — the
answer is a job on the core queue, edited into the original response through the interaction
webhook (follow-ups for further parts) — and records 👍/👎 clicks with an ephemeral thanks.
It needs ``DISCORD_PUBLIC_KEY`` only (plus the application id every interaction carries).

The gateway bot (``gateway.py``) hands its `/ask` interactions to the same job.
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from starlette.requests import Request
from starlette.responses import Response

from adapters.discord import render, translate
from core.config import ConfigError
from core.errors import BadRequest, HubError, Unauthorized
from core.inbox import Answer
from core.inbox.door import Door
from core.messages import for_error, polite
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS
from core.retry import RetryAfter, retrying

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
JOB = "discord.interaction"
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT = 1, 2, 3
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE = 1, 4, 5, 6


def verify_key(public_key: str) -> VerifyKey:
    try:
        return VerifyKey(bytes.fromhex(public_key.strip()))
    except (ValueError, TypeError):
        raise ConfigError("DISCORD_PUBLIC_KEY: must be the application's public key (64 hex characters)") from None


def verify(key: VerifyKey, signature: str | None, timestamp: str | None, body: bytes) -> None:
    """Raise Unauthorized unless Discord signed timestamp + body with the application's key."""
    if not signature or not timestamp:
        raise Unauthorized("missing Discord signature headers")
    try:
        key.verify(timestamp.encode() + body, bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        raise Unauthorized("invalid Discord request signature") from None


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def endpoint(door: Door) -> Callable[[Request], Awaitable[Response]]:
    """``POST /discord/interactions``; declares the interaction job."""
    assert door.settings.discord_public_key is not None
    key = verify_key(door.settings.discord_public_key)
    register_jobs(door)

    async def interactions(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        verify(key, request.headers.get("X-Signature-Ed25519"), request.headers.get("X-Signature-Timestamp"), body)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("body must be a JSON interaction") from None
        if not isinstance(payload, dict):
            raise BadRequest("body must be a JSON interaction")
        kind = payload.get("type")
        if kind == PING:
            return _json({"type": PONG})
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        if kind == APPLICATION_COMMAND:
            response = await _command(door, payload)
        elif kind == MESSAGE_COMPONENT:
            response = await _component(door, payload)
        else:
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            raise BadRequest(f"unsupported interaction type {kind!r}")
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)
        return _json(response)

    return interactions


async def _command(door: Door, payload: dict[str, Any]) -> dict[str, Any]:
    question = translate.command_question(payload)
    if question is None or "id" not in payload or "token" not in payload or not translate.interaction_user(payload):
        ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
        return {"type": CHANNEL_MESSAGE, "data": {"content": "Unknown command.", "flags": render.EPHEMERAL}}
    event_id = f"interaction:{payload['id']}"
    request_id = uuid.uuid4().hex
    job = translate.command_job(door.settings, payload, question, request_id)
    try:
        accepted = await door.inbox.accept(PLATFORM, event_id, JOB, job)
    except HubError as exc:  # the queue is full: say so now, let the user ask again
        ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
        return {"type": CHANNEL_MESSAGE, "data": render.text_message(for_error(exc, question, request_id))}
    if not accepted:
        ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
        log.info("duplicate interaction", extra={"event": event_id})
    return {"type": DEFERRED_CHANNEL_MESSAGE}


async def _component(door: Door, payload: dict[str, Any]) -> dict[str, Any]:
    parsed = translate.parse_feedback((payload.get("data") or {}).get("custom_id", ""))
    user_id = translate.interaction_user(payload)
    if parsed is None or user_id is None:
        ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
        return {"type": DEFERRED_UPDATE}  # acknowledge a button that is not ours, change nothing
    request_id, rating = parsed
    tenant = translate.tenant_for(door.settings, payload.get("guild_id"))
    await door.feedback.record(request_id, rating, platform=PLATFORM, user=user_id, tenant=tenant)
    ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()
    return render.thanks_response(payload.get("locale"))


# -- answering: the job, and the interaction webhook it answers through --


class Replies:
    """One HTTP client for every interaction reply of this process (closed with the hub)."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_REPLIES: weakref.WeakKeyDictionary[Door, Replies] = weakref.WeakKeyDictionary()


def register_jobs(door: Door) -> None:
    """Declare the interaction job (the app and the gateway bot may both do it: one client)."""
    if door in _REPLIES:
        return
    replies = _REPLIES[door] = Replies()
    door.on_close(replies.aclose)  # after the job queue has drained

    async def handler(job: dict[str, Any]) -> None:
        await answer_interaction(door, job, replies.client)

    door.inbox.declare(JOB, handler)


class InteractionWebhook:
    """The webhook of one interaction (valid 15 minutes): edit the original response, add follow-ups.

    A 404 right after the deferred ack means Discord has not registered it yet: retried briefly.
    A 429 is retried after the time Discord names.
    """

    ATTEMPTS = 5

    def __init__(self, client: httpx.AsyncClient, api_url: str, application_id: str, token: str) -> None:
        self._client = client
        self._base = f"{api_url.rstrip('/')}/webhooks/{application_id}/{token}"

    async def edit_original(self, message: dict[str, Any]) -> None:
        await self._send("PATCH", f"{self._base}/messages/@original", message)

    async def follow_up(self, message: dict[str, Any]) -> None:
        await self._send("POST", self._base, message)

    async def _send(self, method: str, url: str, message: dict[str, Any]) -> None:
        try:
            async for attempt in retrying(httpx.HTTPStatusError, attempts=self.ATTEMPTS, first_wait_sec=0.25,
                                          max_wait_sec=5.0):  # fmt: skip
                with attempt:
                    response = await self._client.request(method, url, json=message)
                    if response.status_code == 429:
                        raise RetryAfter(_retry_after(response))
                    if response.status_code == 404:
                        response.raise_for_status()  # not registered yet: retried
                    elif response.status_code >= 300:
                        raise _Final(response)
        except RetryAfter:
            response.raise_for_status()
        except _Final as final:
            final.response.raise_for_status()


class _Final(Exception):
    """A status that no retry changes."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.json().get("retry_after", 1.0))
    except (ValueError, AttributeError):
        return float(response.headers.get("Retry-After", 1.0))


async def answer_interaction(door: Door, job: dict[str, Any], client: httpx.AsyncClient) -> None:
    """Ask the core, then edit the answer into the deferred response (follow-ups for more parts).

    Editing ``@original`` is idempotent and the follow-ups sent are noted, so a worker that
    reclaims the job after a crash completes the one answer instead of adding a second."""
    settings = door.settings
    event_id = f"interaction:{job['interaction_id']}"
    request = translate.ask_request(
        settings,
        question=job["question"],
        user_id=job["user_id"],
        guild_id=job.get("guild_id"),
        channel_id=job.get("channel_id"),
        conversation=job["conversation"],
        request_id=job["request_id"],
    )
    try:
        messages = render.answer_messages(await door.asker.ask(request))
    except HubError as exc:
        messages = [render.text_message(for_error(exc, request.question, request.request_id))]
    except Exception as exc:  # never leave the user with "thinking…" forever
        log.error("ask failed", extra={"event": event_id, "exc": type(exc).__name__})
        messages = [render.text_message(polite("error", request_id=request.request_id))]
    async with door.inbox.answer(PLATFORM, event_id) as answer:
        try:
            await _deliver(InteractionWebhook(client, settings.discord_api_url, job["application_id"], job["token"]),
                           messages, answer)  # fmt: skip
        except httpx.HTTPError as exc:
            log.error("interaction reply failed", extra={"event": event_id, "exc": type(exc).__name__})
            ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            answer.give_back()
            return
    ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()
    log.info("interaction answered", extra={"event": event_id, "request_id": request.request_id})


async def _deliver(webhook: InteractionWebhook, messages: list[dict[str, Any]], answer: Answer) -> None:
    await webhook.edit_original(messages[0])
    answer.shown()
    for n, message in enumerate(messages[1:], start=1):
        if n <= answer.opened.get("follow_ups", 0):
            continue  # sent by an attempt that died
        await webhook.follow_up(message)
        await answer.note(follow_ups=n)
