"""Discord events -> core ``AskRequest``: who asks, for which tenant, in which conversation.

Both transports (the discord.py gateway bot and the HTTP interactions endpoint) use these, so a
question reads the same whichever way it arrived.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from core.auth.platforms import DM, discord_tenant
from core.config import Settings
from core.schema import AskRequest

PLATFORM = "discord"
COMMAND = "ask"  # contract: the slash command is `ask` with a string option `question`
OPTION = "question"
THREAD_TYPES = frozenset({10, 11, 12})  # announcement, public and private threads

_MENTION = re.compile(r"<@!?(\d+)>")
# custom_id (at most 100 characters): the answer's request id and the rating.
_FEEDBACK_PREFIX = "askhub:fb"
FEEDBACK_TEMPLATE = rf"{_FEEDBACK_PREFIX}:(?P<rating>up|down):(?P<request_id>[A-Za-z0-9._:-]{{1,80}})"
_FEEDBACK = re.compile(FEEDBACK_TEMPLATE)

# The "Talk to a person" button after a 👎: the conversation it hands off and the 👎 click it came
# from (one handoff per button, however often it is pressed).
_PERSON_PREFIX = "askhub:person"
PERSON_TEMPLATE = rf"{_PERSON_PREFIX}:(?P<conversation>\d{{1,20}}(?::\d{{1,20}})?):(?P<press>\d{{1,20}})"
_PERSON = re.compile(PERSON_TEMPLATE)

Rating = Literal["up", "down"]


# What an unplaced slash command is told (ephemeral): not an answer, only why there is none.
UNPLACED_NOTE = "This bot is not set up to answer here."


def tenant_for(settings: Settings, guild_id: object | None) -> str | None:
    """The guild's (or a DM's) tenant; None: nothing places it (core.auth.platforms), so it is not answered."""
    return discord_tenant(settings.discord, guild_id)


def identity(guild_id: object | None) -> str:
    """The id an unplaced event is logged with: the guild, or "dm" (never the user's id)."""
    return str(guild_id) if guild_id else DM


def strip_mentions(text: str, bot_id: int | str) -> str:
    """The question without the mentions that addressed it to the bot."""
    bot = str(bot_id)
    return " ".join(_MENTION.sub(lambda m: "" if m.group(1) == bot else m.group(0), text).split())


def conversation_for_command(channel_id: object, is_thread: bool, user_id: object) -> str:
    """/ask inside a thread continues the thread's conversation; elsewhere each user has their own."""
    return str(channel_id) if is_thread else f"{channel_id}:{user_id}"


def ask_request(
    settings: Settings,
    *,
    question: str,
    user_id: object,
    guild_id: object | None,
    channel_id: object,
    conversation: str,
    request_id: str,
) -> AskRequest:
    tenant = tenant_for(settings, guild_id)
    if tenant is None:
        raise ValueError("an unplaced guild or DM is never asked for")  # the intake drops it first
    return AskRequest(
        question=question,
        tenant=tenant,
        client=PLATFORM,
        user=str(user_id),
        platform=PLATFORM,
        channel=str(channel_id),
        conversation_id=f"{PLATFORM}:{conversation}",
        request_id=request_id,
    )


def feedback_custom_id(request_id: str, rating: Rating) -> str:
    return f"{_FEEDBACK_PREFIX}:{rating}:{request_id}"


def parse_feedback(custom_id: str) -> tuple[str, Rating] | None:
    """(request id, rating) of a 👍/👎 button, or None for any other component."""
    match = _FEEDBACK.fullmatch(custom_id or "")
    if match is None:
        return None
    rating: Rating = "up" if match["rating"] == "up" else "down"
    return match["request_id"], rating


def answer_conversation(
    channel_id: object, *, user_id: object, dm: bool, thread: bool, by_command: bool, reply_to: object | None
) -> str | None:
    """The conversation of the answer a 👎 was pressed on, as the bot keyed it there: a thread is
    the thread; an `/ask` answer elsewhere is the asker's own in that channel; a DM message the
    DM; an answer given in place (no thread could be started) the question's. None: unknown."""
    if thread:
        return str(channel_id)
    if by_command:
        return conversation_for_command(channel_id, False, user_id)
    if dm:
        return str(channel_id)
    return f"{channel_id}:{reply_to}" if reply_to else None


def person_custom_id(conversation: str, press: object) -> str:
    return f"{_PERSON_PREFIX}:{conversation}:{press}"


def parse_person(custom_id: str, channel_id: object) -> tuple[str, str] | None:
    """(conversation, press) of a "Talk to a person" button pressed in the channel it names, else None."""
    match = _PERSON.fullmatch(custom_id or "")
    if match is None or match["conversation"].split(":")[0] != str(channel_id):
        return None
    return match["conversation"], match["press"]


def language_of_locale(locale: object) -> str:
    return "zh-TW" if str(locale or "").startswith("zh") else "en"


# -- raw interaction payloads (the HTTP endpoint; the gateway gets discord.py objects) --


def interaction_user(payload: dict[str, Any]) -> str | None:
    """In a guild the user is under ``member``; in DMs it is ``user``."""
    user = (payload.get("member") or {}).get("user") or payload.get("user") or {}
    user_id = user.get("id")
    return str(user_id) if user_id else None


def command_question(payload: dict[str, Any]) -> str | None:
    """The `question` of an `/ask` command, or None when the interaction is another command."""
    data = payload.get("data") or {}
    if data.get("name") != COMMAND:
        return None
    for option in data.get("options") or []:
        if option.get("name") == OPTION and isinstance(option.get("value"), str):
            return str(option["value"])
    return ""


def command_job(settings: Settings, payload: dict[str, Any], question: str, request_id: str) -> dict[str, Any]:
    """The plain-data job for an `/ask` interaction (answered later through its webhook)."""
    channel = payload.get("channel") or {}
    channel_id = payload.get("channel_id") or channel.get("id")
    user_id = interaction_user(payload)
    return {
        "interaction_id": str(payload["id"]),
        "application_id": str(payload.get("application_id") or settings.discord_application_id),
        "token": payload["token"],
        "question": question,
        "user_id": user_id,
        "guild_id": payload.get("guild_id"),
        "channel_id": channel_id,
        "conversation": conversation_for_command(channel_id, channel.get("type") in THREAD_TYPES, user_id),
        "request_id": request_id,
    }


def payload_channel(payload: dict[str, Any]) -> str | None:
    channel = payload.get("channel") or {}
    channel_id = payload.get("channel_id") or channel.get("id")
    return str(channel_id) if channel_id else None


def feedback_conversation(payload: dict[str, Any]) -> str | None:
    """``answer_conversation`` of a 👍/👎 click as the HTTP endpoint gets it (the answer is ``message``)."""
    channel = payload.get("channel") or {}
    channel_id, user_id = payload_channel(payload), interaction_user(payload)
    if channel_id is None or user_id is None:
        return None
    message = payload.get("message") or {}
    by_command = bool(message.get("interaction_metadata") or message.get("interaction") or message.get("webhook_id"))
    return answer_conversation(
        channel_id,
        user_id=user_id,
        dm=not payload.get("guild_id"),
        thread=channel.get("type") in THREAD_TYPES,
        by_command=by_command,
        reply_to=(message.get("message_reference") or {}).get("message_id"),
    )
