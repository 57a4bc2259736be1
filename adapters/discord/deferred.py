"""Deferred-answer delivery: the ``discord.interaction`` job and the interaction webhook it uses.

`/ask` (from the HTTP endpoint or the gateway bot) is acknowledged with a deferred response;
this job asks the core and edits the answer into that response (``@original``), adding
follow-ups for further parts. Editing ``@original`` is idempotent; a follow-up is noted before
it is sent, so a worker that reclaims the job after a crash never sends a part twice.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import httpx

from adapters.discord import handoff, person, render, translate
from adapters.discord.rest import Rest
from core.errors import HubError
from core.handoff import HandoffUnavailable, RelayFailed
from core.inbox import Answer
from core.inbox.door import Door
from core.messages import for_error, polite
from core.metrics import ADAPTER_EVENTS
from core.retry import RetryAfter, retrying
from core.schema import AskRequest

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
JOB = "discord.interaction"


_REPLIES: weakref.WeakKeyDictionary[Door, Rest] = weakref.WeakKeyDictionary()


def register_jobs(door: Door) -> None:
    """Declare the interaction jobs, `/ask` and "Talk to a person" (the app and the gateway bot may
    both do it: one client)."""
    if door in _REPLIES:
        return
    replies = _REPLIES[door] = Rest()  # one client for the app and the gateway bot
    door.on_close(replies.aclose)  # after the job queue has drained

    async def handler(job: dict[str, Any]) -> None:
        await answer_interaction(door, job, replies.client)

    async def person_pressed(job: dict[str, Any]) -> None:
        await person.start(door, job, replies.client)

    door.inbox.declare(JOB, handler)
    door.inbox.declare(person.JOB, person_pressed)


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
        said = await _handoff(door, job, request, event_id)
        messages = (
            [render.text_message(said)] if said is not None else render.answer_messages(await door.asker.ask(request))
        )
    except RelayFailed:
        raise  # handed off, not relayed yet: the job fails and the queue delivers it again
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


async def _handoff(door: Door, job: dict[str, Any], request: AskRequest, event_id: str) -> str | None:
    """`/ask` while a person has the conversation: the agents get it and the reply says so; a
    question asking for a person gets the notice. None: the bot answers. Needs the bot token
    (agents' replies are posted to the channel as the bot)."""
    token = door.settings.discord_bot_token
    if not (door.handoff.enabled and token is not None and token.get_secret_value() and job.get("channel_id")):
        return None
    message = handoff.message_of(request, job["conversation"], job["channel_id"], event_id)
    try:
        got = await door.handoff.intercept(message)
    except HandoffUnavailable:
        return None
    if got.action in ("started", "limited"):
        return got.say or ""
    if got.action == "relayed":
        return handoff.sent_note(request.question)
    return None


async def _deliver(webhook: InteractionWebhook, messages: list[dict[str, Any]], answer: Answer) -> None:
    await webhook.edit_original(messages[0])
    answer.shown()
    for n, message in enumerate(messages[1:], start=1):
        if n <= answer.opened.get("follow_ups", 0):
            continue  # sent, or in flight, when an attempt died: never twice
        # Noted before it is sent: a follow-up has no idempotency key, and Discord cannot list an
        # interaction's follow-ups, so a part in flight at a crash is counted as sent.
        await answer.note(follow_ups=n)
        await webhook.follow_up(message)
