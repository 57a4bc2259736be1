"""LINE webhook event -> what to do with it (and, for a question, the core AskRequest).

One event becomes one ``Incoming``: ask a question, greet, say "text only", record feedback, or
ignore. In groups and rooms the bot answers only when addressed: mentioned (``isSelf`` in the
webhook's mention objects, or the mentioned user id is the bot's, the payload's
``destination``) or addressed with a configured prefix; the mention or prefix is cut from the
question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    GroupSource,
    JoinEvent,
    MessageEvent,
    PostbackEvent,
    RoomSource,
    TextMessageContent,
    UserMentionee,
    UserSource,
)

from core.config import LineSettings
from core.schema import AskRequest

Action = Literal["ask", "greet", "text_only", "feedback", "ignore"]
_FEEDBACK_TAG = "askhub-fb"


@dataclass(frozen=True, slots=True)
class Chat:
    kind: Literal["user", "group", "room"]
    id: str  # where answers go: the user, group or room id
    user: str | None  # who wrote (a group member may have no visible user id)

    @property
    def one_to_one(self) -> bool:
        return self.kind == "user"


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    rating: Literal["up", "down"]
    language: str


@dataclass(frozen=True, slots=True)
class Incoming:
    action: Action
    event_id: str
    timestamp_ms: int
    chat: Chat | None = None
    reply_token: str | None = None
    question: str = ""
    feedback: Feedback | None = None
    why: str = ""  # for an ignored event: a fixed word for logs and metrics
    note: str = ""  # for a message that is not text: its type ("sticker", "image" …), relayed in handoffs


def parse_event(raw: dict[str, Any]) -> Event | None:
    """The SDK's typed event, or None for a type the SDK does not know."""
    try:
        return Event.from_dict(raw)
    except (ValueError, TypeError, KeyError):
        return None


def translate(event: Event, settings: LineSettings, destination: str | None) -> Incoming:
    base = {"event_id": event.webhook_event_id, "timestamp_ms": event.timestamp}
    if event.mode == "standby":  # another channel (a module) holds the chat
        return Incoming("ignore", why="standby", **base)
    chat = chat_of(event)
    if chat is None:
        return Incoming("ignore", why="no_source", **base)
    token = getattr(event, "reply_token", None)
    base |= {"chat": chat, "reply_token": token}
    if isinstance(event, FollowEvent | JoinEvent):
        return Incoming("greet", **base)
    if isinstance(event, PostbackEvent):
        feedback = parse_feedback(event.postback.data)
        if feedback is None:
            return Incoming("ignore", why="postback", **base)
        return Incoming("feedback", feedback=feedback, **base)
    if not isinstance(event, MessageEvent):
        return Incoming("ignore", why="event_type", **base)
    message = event.message
    if not isinstance(message, TextMessageContent):
        # In a group nobody can address the bot with a sticker: stay quiet there.
        if chat.one_to_one:
            return Incoming("text_only", note=str(message.type or "message"), **base)
        return Incoming("ignore", why="not_addressed", **base)
    question = addressed_text(message, settings.group_prefixes, destination)
    if question is None:
        if chat.one_to_one:
            question = message.text.strip()
        else:
            return Incoming("ignore", why="not_addressed", **base)
    if not question:
        return Incoming("greet", **base)  # "@bot" alone: say what it can do
    return Incoming("ask", question=question, **base)


def chat_of(event: Event) -> Chat | None:
    source = event.source
    if isinstance(source, UserSource) and source.user_id:
        return Chat("user", source.user_id, source.user_id)
    if isinstance(source, GroupSource):
        return Chat("group", source.group_id, source.user_id)
    if isinstance(source, RoomSource):
        return Chat("room", source.room_id, source.user_id)
    return None


def addressed_text(message: TextMessageContent, prefixes: list[str], destination: str | None) -> str | None:
    """The question without the bot's mention or prefix; None when the bot is not addressed."""
    text = message.text
    mentionees = message.mention.mentionees if message.mention else []
    selves = [
        m
        for m in mentionees
        if isinstance(m, UserMentionee) and (m.is_self or (destination and m.user_id == destination))
    ]
    if selves:
        # Mention offsets count UTF-16 code units, as LINE's clients do; cut from the end backwards.
        for m in sorted(selves, key=lambda m: m.index, reverse=True):
            start, end = _py_index(text, m.index), _py_index(text, m.index + m.length)
            text = text[:start] + " " + text[end:]
        return _tidy(text)
    stripped = text.strip()
    for prefix in prefixes:
        if not prefix or not stripped.lower().startswith(prefix.lower()):
            continue
        rest = stripped[len(prefix) :]
        if rest[:1].isascii() and rest[:1].isalnum():
            continue  # "/asking" is not "/ask"
        return _tidy(rest)
    return None


def _tidy(text: str) -> str:
    return " ".join(text.split()).lstrip(":：,，、").strip()


def _py_index(text: str, utf16_offset: int) -> int:
    units = 0
    for i, ch in enumerate(text):
        if units >= utf16_offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def to_request(incoming: Incoming, settings: LineSettings, request_id: str) -> AskRequest:
    chat = incoming.chat
    assert chat is not None
    return AskRequest(
        incoming.question,
        tenant=settings.tenant,
        client="line",
        user=chat.user or chat.id,  # limits per LINE user; a member without an id counts as the chat
        platform="line",
        channel=chat.id,
        conversation_id=f"line:{chat.id}",
        request_id=request_id,
    )


# --- feedback postbacks ------------------------------------------------------------------------


def feedback_data(request_id: str, rating: str, language: str) -> str:
    """The postback data of a 👍 / 👎 button (LINE allows 300 characters)."""
    return urlencode({"a": _FEEDBACK_TAG, "r": rating, "id": request_id, "l": language})


def parse_feedback(data: str) -> Feedback | None:
    fields = {k: v[0] for k, v in parse_qs(data, max_num_fields=8).items()}
    request_id = fields.get("id", "")
    rating = fields.get("r")
    if fields.get("a") != _FEEDBACK_TAG or rating not in ("up", "down"):
        return None
    if not (0 < len(request_id) <= 64 and request_id.isalnum()):
        return None
    language = "zh-TW" if fields.get("l") == "zh-TW" else "en"
    return Feedback(request_id, rating, language)  # type: ignore[arg-type]
