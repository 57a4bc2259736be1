"""Core ``AskResult`` -> Discord messages (plain JSON payloads, as the REST API takes them).

- the answer in messages of at most 2,000 characters (cut by core.textsplit: code blocks, words and
  emoji stay whole where possible), never pinging anyone whatever the model wrote;
- the sources as one embed on the last message, within Discord's embed limits;
- 👍 / 👎 buttons on the last message, carrying the request id for core's feedback store;
- the ephemeral thanks for a click, after a 👎 with a "Talk to a person" button when handoff is on.

The gateway bot turns the same payloads into discord.py objects (``buttons.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.discord.translate import Rating, feedback_custom_id, language_of_locale
from core.schema import AskResult, Source
from core.textsplit import split_text
from core.verified.mark import verified_line

MESSAGE_LIMIT = 2000
MAX_MESSAGES = 10  # a runaway answer is cut short (with an ellipsis) rather than flooding a channel
THREAD_NAME_LIMIT = 100

EMBED_TITLE = "Sources"
EMBED_COLOR = 0x5865F2
EMBED_MAX_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_TOTAL = 6000
SNIPPET_CHARS = 160

EPHEMERAL = 64  # message flag: only the clicking user sees it
NO_MENTIONS: dict[str, list[str]] = {"parse": []}
BUTTONS: tuple[tuple[Rating, str], ...] = (("up", "👍"), ("down", "👎"))

_THANKS = {"en": "Thanks for the feedback!", "zh-TW": "謝謝你的回饋！"}
_PERSON = {"en": "Talk to a person", "zh-TW": "真人客服"}
_CONTENT_HINT = (
    "I can read only messages that mention me: please mention <@{bot}> with your follow-up. "
    "請在訊息中提到 <@{bot}>，我才看得到你的追問。"
)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def parts(text: str) -> list[str]:
    """The answer as messages that each fit Discord's 2,000-character limit."""
    return split_text(text, MESSAGE_LIMIT, max_parts=MAX_MESSAGES) or ["…"]


def progress(text: str) -> str:
    """The answer so far, shown while it grows (the final messages replace it)."""
    shown = text.strip() or "…"
    return _clip(shown + " …", MESSAGE_LIMIT)


def sources_embed(sources: Sequence[Source]) -> dict[str, Any] | None:
    """One embed titled "Sources": numbered fields with title and score, within Discord's limits."""
    if not sources:
        return None
    fields = []
    total = len(EMBED_TITLE)
    for n, source in enumerate(sources[:EMBED_MAX_FIELDS], 1):
        name = _clip(f"{n}. {source.title or source.id}", EMBED_FIELD_NAME)
        snippet = _clip(" ".join(source.text.split()), SNIPPET_CHARS)
        link = f" · [open]({source.url})" if source.url and source.url.startswith(("https://", "http://")) else ""
        value = _clip(f"score {source.score:.2f}{link}" + (f" · {snippet}" if snippet else ""), EMBED_FIELD_VALUE)
        if total + len(name) + len(value) > EMBED_TOTAL:
            break
        total += len(name) + len(value)
        fields.append({"name": name, "value": value, "inline": False})
    return {"type": "rich", "title": EMBED_TITLE, "color": EMBED_COLOR, "fields": fields}


def feedback_row(request_id: str) -> dict[str, Any]:
    """An action row with the 👍 and 👎 buttons (secondary style)."""
    return {
        "type": 1,
        "components": [
            {"type": 2, "style": 2, "emoji": {"name": emoji}, "custom_id": feedback_custom_id(request_id, rating)}
            for rating, emoji in BUTTONS
        ],
    }


def text_message(text: str) -> dict[str, Any]:
    return {"content": _clip(text, MESSAGE_LIMIT), "allowed_mentions": NO_MENTIONS}


def answer_messages(result: AskResult) -> list[dict[str, Any]]:
    """The messages of one answer; the last carries the sources embed and the feedback buttons."""
    line = verified_line(result.verified, result.question)
    messages = [text_message(part) for part in parts(f"{result.answer}\n\n{line}" if line else result.answer)]
    last = messages[-1]
    embed = sources_embed(result.sources)
    if embed is not None:
        last["embeds"] = [embed]
    if result.request_id:
        last["components"] = [feedback_row(result.request_id)]
    return messages


def thread_name(question: str) -> str:
    return _clip(" ".join(question.split()), THREAD_NAME_LIMIT) or "Question"


def thanks(locale: str | None) -> str:
    return _THANKS[language_of_locale(locale)]


def person_label(locale: str | None) -> str:
    return _PERSON[language_of_locale(locale)]


def person_row(custom_id: str, locale: str | None) -> dict[str, Any]:
    """An action row with the "Talk to a person" button (primary style) that hands the chat off."""
    return {"type": 1, "components": [{"type": 2, "style": 1, "label": person_label(locale), "custom_id": custom_id}]}


def thanks_response(locale: str | None, *, person: str | None = None) -> dict[str, Any]:
    """Interaction response: an ephemeral thanks for a 👍/👎 click (type 4 with flags 64); after a
    👎 where a person can take over, with the "Talk to a person" button (``person``: its custom_id)."""
    data: dict[str, Any] = {"content": thanks(locale), "flags": EPHEMERAL}
    if person:
        data["components"] = [person_row(person, locale)]
    return {"type": 4, "data": data}


def content_hint(bot_id: int) -> str:
    """For a thread follow-up whose text Discord withheld (no message-content intent)."""
    return _CONTENT_HINT.format(bot=bot_id)
