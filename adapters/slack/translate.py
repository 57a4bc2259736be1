"""Slack payloads -> what the hub is asked: who (tenant, user), where (channel, thread), what (text).

Pure functions over the decoded payloads, no I/O, so every rule about which events the bot
answers is visible (and tested) in one place.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from core.auth.platforms import slack_tenant
from core.config import Settings
from core.schema import AskRequest

PLATFORM = "slack"

# Message subtypes that are still a person writing to the bot. Everything else (bot_message,
# message_changed, message_deleted, channel_join, ...) is ignored.
_PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}


@dataclass(frozen=True, slots=True)
class Incoming:
    """A question the bot should answer (or, for kind "thread", may: if it answers that thread).

    ``key`` identifies the message, not the delivery: retries of one event, and the
    ``app_mention`` and ``message`` events Slack sends for one message, share it, so the
    message is answered once whichever arrives first.
    """

    kind: str  # "mention" | "dm" | "thread" | "command"
    key: str
    team: str
    channel: str
    user: str
    text: str
    thread_ts: str | None  # None for /ask: the thread starts at the message the bot posts
    response_url: str | None = None

    @property
    def conversation_id(self) -> str | None:
        return conversation_id(self.team, self.channel, self.thread_ts) if self.thread_ts else None

    def as_payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str  # "bot" | "edited" | "deleted" | "subtype" | "not_addressed" | "no_user" | "event"


def conversation_id(team: str, channel: str, thread_ts: str) -> str:
    """The thread is the conversation (core keeps its memory under this id)."""
    return f"slack:{team}:{channel}:{thread_ts}"


def thread_id(team: str, channel: str, thread_ts: str) -> str:
    """A thread, for core's thread markers (kept per platform and tenant)."""
    return f"{team}:{channel}:{thread_ts}"


def team_of(body: dict[str, Any]) -> str:
    event = body.get("event") or {}
    team = body.get("team_id") or event.get("team") or (body.get("team") or {}).get("id") or ""
    return str(team)


def from_event(body: dict[str, Any], *, bot_user_id: str | None, bot_id: str | None) -> Incoming | Ignored:
    """An Events API callback (``app_mention`` or ``message``) -> a question, or why not."""
    event = body.get("event") or {}
    etype = event.get("type")
    if etype not in ("app_mention", "message"):
        return Ignored("event")
    subtype = event.get("subtype")
    if subtype == "message_changed":
        return Ignored("edited")
    if subtype == "message_deleted":
        return Ignored("deleted")
    if subtype == "bot_message" or event.get("bot_id") or event.get("bot_profile"):
        return Ignored("bot")
    if subtype not in _PERSON_SUBTYPES:
        return Ignored("subtype")
    user = event.get("user")
    if not user:
        return Ignored("no_user")
    if user == bot_user_id or (bot_id and event.get("bot_id") == bot_id):
        return Ignored("bot")
    team = team_of(body)
    channel = str(event.get("channel") or "")
    ts = str(event.get("ts") or "")
    if not channel or not ts:
        return Ignored("event")
    thread_ts = event.get("thread_ts") or ts
    text = question_text(event.get("text") or "", bot_user_id)
    key = f"msg:{team}:{channel}:{ts}"

    if etype == "app_mention":
        return Incoming("mention", key, team, channel, user, text, thread_ts)
    if event.get("channel_type") == "im":
        return Incoming("dm", key, team, channel, user, text, thread_ts)
    if event.get("thread_ts") and event["thread_ts"] != ts:
        # A reply in a thread: answered only when the bot answers that thread (the caller checks),
        # and not when it is addressed to someone else ("@alice can you check?").
        mentioned = set(_MENTION.findall(event.get("text") or ""))
        if mentioned and bot_user_id not in mentioned:
            return Ignored("addressed_to_someone_else")
        return Incoming("thread", key, team, channel, user, text, thread_ts)
    return Ignored("not_addressed")  # a channel message that is not for the bot (mentions come as app_mention)


def from_command(body: dict[str, Any]) -> Incoming:
    """``/ask <question>``. Keyed by trigger_id, which Slack makes unique per invocation."""
    team = str(body.get("team_id") or "")
    trigger = body.get("trigger_id") or f"{body.get('channel_id')}:{body.get('user_id')}:{body.get('text')}"
    return Incoming(
        "command",
        f"cmd:{team}:{trigger}",
        team,
        str(body.get("channel_id") or ""),
        str(body.get("user_id") or ""),
        question_text(body.get("text") or "", None),
        None,
        response_url=body.get("response_url"),
    )


@dataclass(frozen=True, slots=True)
class Vote:
    key: str
    request_id: str
    rating: str  # "up" | "down"
    team: str
    user: str
    channel: str
    thread_ts: str | None
    response_url: str | None

    def as_payload(self) -> dict[str, Any]:
        return asdict(self)


def from_action(body: dict[str, Any], action: dict[str, Any]) -> Vote | None:
    """A 👍 / 👎 click (block_actions) -> the vote, or None when it is not one of ours."""
    rating = {"askhub_feedback_up": "up", "askhub_feedback_down": "down"}.get(action.get("action_id", ""))
    request_id = str(action.get("value") or "")
    if rating is None or not request_id:
        return None
    team = str((body.get("team") or {}).get("id") or body.get("team_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
    message_ts = container.get("message_ts") or message.get("ts") or ""
    thread_ts = container.get("thread_ts") or message.get("thread_ts") or message_ts or None
    stable = body.get("trigger_id") or f"{channel}:{message_ts}:{action.get('action_ts')}"
    return Vote(f"act:{team}:{stable}", request_id, rating, team, user, channel, thread_ts, body.get("response_url"))


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def question_text(text: str, bot_user_id: str | None) -> str:
    """Slack's message text as the plain question: without the bot's mention, links and
    channel references as their labels, entities decoded, whitespace collapsed."""

    def mention(m: re.Match[str]) -> str:
        return "" if m.group(1) == bot_user_id else "@user"

    text = _MENTION.sub(mention, text)

    def link(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith(("#C", "#G")):
            return f"#{label}" if label else "#channel"
        if target.startswith("!"):  # <!here>, <!channel>, <!subteam^...|@team>
            return label or ""
        return label or target.removeprefix("mailto:")

    text = _LINK.sub(link, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")  # Slack escapes only these
    return " ".join(text.split())


def tenant_for(settings: Settings, team: str) -> str | None:
    """The workspace's tenant; None: nothing places it (core.auth.platforms), so it is not answered."""
    return slack_tenant(settings.slack, team)


def to_request(incoming: Incoming, settings: Settings, *, request_id: str, thread_ts: str | None) -> AskRequest:
    tenant = tenant_for(settings, incoming.team)
    if tenant is None:
        raise ValueError("an unplaced workspace is never asked for")  # the transport drops it first
    return AskRequest(
        question=incoming.text,
        tenant=tenant,
        client=PLATFORM,
        user=incoming.user,
        platform=PLATFORM,
        channel=incoming.channel,
        conversation_id=conversation_id(incoming.team, incoming.channel, thread_ts) if thread_ts else None,
        request_id=request_id,
    )
