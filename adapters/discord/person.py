"""The "Talk to a person" button after a 👎 (core.handoff), for both transports.

offered()  whether a 👎 here is thanked with the button: handoff on for Discord and the tenant
           (``handoff.doors`` / ``handoff.tenants``) and the bot token set (agents' replies are
           posted as the bot)
job_of()   the plain-data job of one press
start()    the ``discord.person`` job: core's ``on_request`` for the conversation the button names,
           under the id of the 👎 click that showed it (a second press or a redelivered interaction
           is the same handoff: one desk message), then the ephemeral thanks is edited into the
           notice, in the customer's language, through the interaction webhook
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx

from adapters.discord import handoff, render, translate
from core.handoff import HandoffUnavailable
from core.inbox.door import Door
from core.metrics import ADAPTER_EVENTS

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
JOB = "discord.person"

_BUSY = {
    "en": "Our team can't take this right now. Please try again in a little while.",
    "zh-TW": "真人客服目前無法接手，請稍後再試。",
}
_ALREADY = {
    "en": "Our team already has this conversation; they will answer here.",
    "zh-TW": "真人客服已在處理這段對話，會在這裡回覆您。",
}


def offered(door: Door, tenant: str) -> bool:
    token = door.settings.discord_bot_token
    return bool(token is not None and token.get_secret_value()) and door.handoff.covers(PLATFORM, tenant)


def job_of(
    *,
    interaction_id: object,
    application_id: object,
    token: str,
    conversation: str,
    press: str,
    channel_id: object,
    guild_id: object | None,
    user_id: object,
    locale: object,
) -> dict[str, Any]:
    return {
        "interaction_id": str(interaction_id),
        "application_id": str(application_id),
        "token": token,
        "conversation": conversation,
        "press": press,
        "channel_id": str(channel_id),
        "guild_id": str(guild_id) if guild_id else None,
        "user_id": str(user_id),
        "locale": str(locale or ""),
    }


async def start(door: Door, job: dict[str, Any], client: httpx.AsyncClient) -> None:
    from adapters.discord.deferred import InteractionWebhook  # deferred declares this job

    settings = door.settings
    language = translate.language_of_locale(job.get("locale"))
    request = translate.ask_request(
        settings,
        question=door.handoff.request_text(language) if door.handoff.enabled else "",
        user_id=job["user_id"],
        guild_id=job.get("guild_id"),
        channel_id=job["channel_id"],
        conversation=job["conversation"],
        request_id=uuid.uuid4().hex,
    )
    message = handoff.message_of(request, job["conversation"], job["channel_id"], f"person:{job['press']}")
    try:
        got = await door.handoff.on_request(message)
        if got.action == "started":
            say = got.say or ""
        else:
            say = _ALREADY[language] if got.action == "relayed" else render.thanks(job.get("locale"))
    except HandoffUnavailable:  # Slack cannot take it now
        say = _BUSY[language]
    event_id = f"interaction:{job['interaction_id']}"
    webhook = InteractionWebhook(client, settings.discord_api_url, job["application_id"], job["token"])
    async with door.inbox.answer(PLATFORM, event_id) as answer:
        try:  # @original of a pressed button is the message it is on: the thanks, now without it
            await webhook.edit_original({"content": say, "components": [], "allowed_mentions": render.NO_MENTIONS})
        except httpx.HTTPError as exc:
            log.error("interaction reply failed", extra={"event": event_id, "exc": type(exc).__name__})
            ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            answer.give_back()
            return
        answer.shown()
    ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()
