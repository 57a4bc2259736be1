"""Telegram Update -> what to do with it (pure: python-telegram-bot's types in, no I/O).

In a private chat every text is a question. In a group the bot answers only when addressed: its
@username (or a text mention of it), ``/ask`` (``/ask@thisbot``), or a reply to one of its
messages; the mention or command is cut from the question. A tap on an inline button is feedback
(👍 / 👎) or a request for a person. Edits, channel posts and other bots are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from telegram import Message, MessageEntity, Update

from core.config import TelegramSettings
from core.schema import AskRequest

PLATFORM = "telegram"
Action = Literal["ask", "greet", "media", "feedback", "person", "ignore"]
_FEEDBACK, _PERSON = "fb", "person"
COMMANDS = ("/ask",)
GREETINGS = ("/start", "/help")


@dataclass(frozen=True, slots=True)
class Me:
    """The bot itself, as getMe tells it."""

    id: int
    username: str


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    rating: Literal["up", "down"]
    language: str


@dataclass(frozen=True, slots=True)
class Incoming:
    action: Action
    update_id: int
    chat_id: int = 0
    private: bool = False
    user: str = ""  # the Telegram user id of who wrote or tapped
    message_id: int = 0  # the question (answers reply to it in groups)
    thread_id: int | None = None  # a forum topic
    question: str = ""
    feedback: Feedback | None = None
    callback_id: str = ""  # a button tap to acknowledge
    button: str = ""  # "Talk to a person": the request id of the answer that offered it
    language: str = "en"
    note: str = ""  # a message that is not text: what it is ("photo", "voice" …)
    why: str = ""


def translate(update: Update, me: Me) -> Incoming:
    base = {"update_id": update.update_id}
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat if query.message is not None else None
        where = {"chat_id": chat.id if chat else 0, "private": bool(chat and chat.type == "private"),
                 "user": str(query.from_user.id), "callback_id": query.id}  # fmt: skip
        return _button(query.data or "", base | where)
    message = update.message
    if message is None:  # an edit, a channel post, a member update …
        return Incoming("ignore", why="update_type", **base)
    if message.from_user is None or message.from_user.is_bot:
        return Incoming("ignore", why="bot", **base)
    private = message.chat.type == "private"
    base |= {"chat_id": message.chat.id, "private": private, "user": str(message.from_user.id),
             "message_id": message.message_id, "thread_id": message.message_thread_id if message.is_topic_message
             else None}  # fmt: skip
    if message.text is None:
        if private:
            return Incoming("media", note=_kind(message), **base)
        return Incoming("ignore", why="not_addressed", **base)
    question = addressed_text(message, me)
    if question is None:
        if not private:
            return Incoming("ignore", why="not_addressed", **base)
        question = message.text
    if question.split(" ", 1)[0].lower() in GREETINGS:
        return Incoming("greet", **base)
    question = " ".join(question.split())
    if not question:
        return Incoming("greet", **base)
    return Incoming("ask", question=question, **base)


def addressed_text(message: Message, me: Me) -> str | None:
    """The text without the bot's mention or command; None when the bot is not addressed."""
    text = message.text or ""
    cuts: list[tuple[int, int]] = []
    for entity in message.entities:
        part = message.parse_entity(entity)
        named = entity.type == MessageEntity.MENTION and part[1:].lower() == me.username.lower()
        linked = entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == me.id
        if named or linked:
            cuts.append((entity.offset, entity.length))
        elif entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            command, _, bot = part.lower().partition("@")
            if bot and bot != me.username.lower():
                return None  # another bot's command
            if command in GREETINGS:
                return command
            if command in COMMANDS:
                cuts.append((0, entity.length))
    replied = message.reply_to_message
    to_me = replied is not None and replied.from_user is not None and replied.from_user.id == me.id
    if not cuts:
        return text if to_me else None
    # Entity offsets count UTF-16 code units: cut on the UTF-16 form, from the end backwards.
    units = text.encode("utf-16-le")
    for offset, length in sorted(cuts, reverse=True):
        units = units[: offset * 2] + " ".encode("utf-16-le") + units[(offset + length) * 2 :]
    return " ".join(units.decode("utf-16-le").split()).lstrip(":：,，").strip()


def _kind(message: Message) -> str:
    for kind in ("photo", "voice", "audio", "video", "video_note", "document", "sticker", "location", "contact"):
        if getattr(message, kind, None):
            return kind
    return "message"


def _button(data: str, base: dict[str, object]) -> Incoming:
    parts = data.split(":")
    language = "zh-TW" if parts[-1:] == ["zh-TW"] else "en"
    if len(parts) == 3 and parts[0] == _PERSON and _request_id(parts[1]):
        return Incoming("person", button=parts[1], language=language, **base)  # type: ignore[arg-type]
    if len(parts) == 4 and parts[0] == _FEEDBACK and parts[1] in ("up", "down") and _request_id(parts[2]):
        feedback = Feedback(parts[2], parts[1], language)  # type: ignore[arg-type]
        return Incoming("feedback", feedback=feedback, language=language, **base)  # type: ignore[arg-type]
    return Incoming("ignore", why="button", **base)  # type: ignore[arg-type]


def feedback_data(request_id: str, rating: str, language: str) -> str:
    """An inline button's callback data (Telegram allows 64 bytes)."""
    return f"{_FEEDBACK}:{rating}:{request_id}:{language}"


def person_data(request_id: str, language: str) -> str:
    return f"{_PERSON}:{request_id}:{language}"


def conversation_id(incoming: Incoming) -> str:
    """A private chat is one conversation; in a group each member has their own."""
    if incoming.private:
        return f"{PLATFORM}:{incoming.chat_id}"
    return f"{PLATFORM}:{incoming.chat_id}:{incoming.user}"


def to_request(incoming: Incoming, settings: TelegramSettings, request_id: str) -> AskRequest:
    return AskRequest(
        incoming.question,
        tenant=settings.tenant,
        client=PLATFORM,
        user=incoming.user,
        platform=PLATFORM,
        channel=str(incoming.chat_id),
        conversation_id=conversation_id(incoming),
        request_id=request_id,
    )


def _request_id(value: str) -> bool:
    return 0 < len(value) <= 40 and value.isalnum()
