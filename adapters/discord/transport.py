"""Receiving from Discord: the HTTP interactions endpoint, and answering interactions later.

``POST /discord/interactions`` verifies Discord's Ed25519 signature (over timestamp + raw body),
answers PING with PONG, acknowledges `/ask` with a deferred response (type 5) at once — the
answer is a job on the core queue (``deferred.py``), edited into the original response through
the interaction webhook — and records 👍/👎 clicks with an ephemeral thanks (after a 👎, with
"Talk to a person" when handoff is on: pressed, it is acknowledged at once and the ``person`` job
starts the handoff).
It needs ``DISCORD_PUBLIC_KEY`` only (plus the application id every interaction carries).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from starlette.requests import Request
from starlette.responses import Response

from adapters.discord import person, render, translate
from adapters.discord.deferred import JOB, register_jobs
from core.auth.platforms import unplaced
from core.config import ConfigError
from core.errors import BadRequest, HubError, Unauthorized
from core.inbox.door import Door
from core.messages import for_error
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
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
    if translate.tenant_for(door.settings, payload.get("guild_id")) is None:
        unplaced(PLATFORM, translate.identity(payload.get("guild_id")))
        return {"type": CHANNEL_MESSAGE, "data": {"content": translate.UNPLACED_NOTE, "flags": render.EPHEMERAL}}
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
    custom_id = (payload.get("data") or {}).get("custom_id", "")
    parsed = translate.parse_feedback(custom_id)
    user_id = translate.interaction_user(payload)
    tenant = translate.tenant_for(door.settings, payload.get("guild_id"))
    if tenant is None:
        unplaced(PLATFORM, translate.identity(payload.get("guild_id")))
        return {"type": DEFERRED_UPDATE}
    if parsed is None and user_id is not None and "id" in payload and "token" in payload:
        pressed = translate.parse_person(custom_id, translate.payload_channel(payload))
        if pressed is not None and person.offered(door, tenant):
            return await _person(door, payload, *pressed)
    if parsed is None or user_id is None:
        ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
        return {"type": DEFERRED_UPDATE}  # acknowledge a button that is not ours, change nothing
    request_id, rating = parsed
    await door.feedback.record(request_id, rating, platform=PLATFORM, user=user_id, tenant=tenant)
    ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()
    conversation = translate.feedback_conversation(payload) if rating == "down" else None
    offer = conversation is not None and person.offered(door, tenant)
    button = translate.person_custom_id(conversation, payload["id"]) if offer and conversation else None
    return render.thanks_response(payload.get("locale"), person=button)


async def _person(door: Door, payload: dict[str, Any], conversation: str, press: str) -> dict[str, Any]:
    """The "Talk to a person" button: acknowledged at once (the thanks is edited later), started by a job."""
    job = person.job_of(
        interaction_id=payload["id"],
        application_id=payload.get("application_id") or door.settings.discord_application_id,
        token=payload["token"],
        conversation=conversation,
        press=press,
        channel_id=translate.payload_channel(payload),
        guild_id=payload.get("guild_id"),
        user_id=translate.interaction_user(payload),
        locale=payload.get("locale"),
    )
    try:
        if not await door.inbox.accept(PLATFORM, f"interaction:{payload['id']}", person.JOB, job):
            ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
    except HubError as exc:  # the queue is full: say so now, the customer can press again
        ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
        text = for_error(exc, "", payload["id"])
        return {"type": CHANNEL_MESSAGE, "data": {"content": text, "flags": render.EPHEMERAL}}
    return {"type": DEFERRED_UPDATE}
