"""Core AskResult -> WhatsApp Cloud API messages (pure: dicts of the ``/messages`` body, without ``to``).

A text message holds at most 4,096 characters, an interactive message's body 1,024, a reply
button's title 20, and a message has at most three buttons. An answer is its text split by core's
splitter into at most four messages, the last one interactive: the sources it cites ([1], [2]),
👍 / 👎 and — when the customer can be handed to a person — "Talk to a person". A short answer
is that one interactive message alone.
"""

from __future__ import annotations

from typing import Any

from core.llm.prompt import language_of
from core.messages import for_error, polite
from core.schema import AskResult, Source
from core.textsplit import split_text
from core.verified.mark import verified_line

from .translate import feedback_id, person_id

Message = dict[str, Any]
TEXT_LIMIT = 4096
BODY_LIMIT = 1024
MAX_TEXTS = 4
MAX_SOURCES = 5

_MORE = {
    "zh-TW": "（回答較長，以上為節錄；完整內容請在 Ask Hub 網頁版輸入同一個問題查看。）",
    "en": "(The answer is longer than WhatsApp allows; ask the same question in the Ask Hub web portal to read "
    "all of it.)",
}
_SOURCES = {"zh-TW": "資料來源", "en": "Sources"}
_HELPFUL = {"zh-TW": "這個回答有幫助嗎？", "en": "Was this helpful?"}
_PERSON = {"zh-TW": "真人客服", "en": "Talk to a person"}
_THANKS = {"zh-TW": "謝謝你的回饋！", "en": "Thanks for the feedback!"}
_MEDIA = {
    "zh-TW": "謝謝！我目前只能閱讀文字訊息，請直接輸入你的問題。",
    "en": "Thanks! I can only read text messages for now; please type your question.",
}


def text(body: str) -> Message:
    return {"type": "text", "text": {"body": body, "preview_url": False}}


def answer_messages(result: AskResult, *, person: bool = False) -> list[Message]:
    language = language_of(result.question)
    line = verified_line(result.verified, result.question)
    answer = f"{result.answer}\n\n{line}" if line else result.answer
    footer = sources_text(result.sources, language)
    whole = f"{answer.strip()}\n\n{footer}" if footer else answer.strip()
    buttons = feedback_buttons(result.request_id, language, person=person)
    if len(whole) <= BODY_LIMIT:
        return [interactive(whole or "…", buttons)]
    parts = split_text(answer, TEXT_LIMIT, max_parts=MAX_TEXTS, ellipsis="…\n\n" + _MORE[language]) or [answer]
    return [*(text(part) for part in parts), interactive(footer or _HELPFUL[language], buttons)]


def sources_text(sources: list[Source], language: str) -> str:
    cited: dict[str, list[int]] = {}
    for n, source in enumerate(sources, 1):
        cited.setdefault(source.title.strip() or source.id, []).append(n)
    lines = ["".join(f"[{n}]" for n in numbers) + f" {_clip(title, 80)}" for title, numbers in list(cited.items())]
    if not lines:
        return ""
    return _clip_lines(f"{_SOURCES[language]}:", lines[:MAX_SOURCES], BODY_LIMIT)


def feedback_buttons(request_id: str, language: str, *, person: bool) -> list[tuple[str, str]]:
    buttons = [(feedback_id(request_id, "up", language), "👍"), (feedback_id(request_id, "down", language), "👎")]
    if person:
        buttons.append((person_id(request_id, language), _PERSON[language]))
    return buttons


def interactive(body: str, buttons: list[tuple[str, str]]) -> Message:
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": body[:BODY_LIMIT]},
            "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t[:20]}} for i, t in buttons[:3]]},
        },
    }


def error_messages(error: Exception, question: str, request_id: str) -> list[Message]:
    return [text(for_error(error, question, request_id))]


def media_note() -> list[Message]:
    """No text to tell the language by: both, Traditional Chinese first."""
    return [text(f"{_MEDIA['zh-TW']}\n{_MEDIA['en']}")]


def thanks(language: str, *, person: str | None) -> list[Message]:
    """After a 👎 a "Talk to a person" button (``person``: the rated answer's request id)."""
    if person:
        return [interactive(_THANKS[language], [(person_id(person, language), _PERSON[language])])]
    return [text(_THANKS[language])]


def notice(say: str) -> list[Message]:
    return [text(say or polite("error"))]


def template(name: str, language: str) -> Message:
    """Outside the 24-hour window WhatsApp takes only an approved template."""
    return {"type": "template", "template": {"name": name, "language": {"code": language}}}


def _clip(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _clip_lines(heading: str, lines: list[str], limit: int) -> str:
    out = heading
    for line in lines:
        if len(out) + 1 + len(line) > limit:
            break
        out += "\n" + line
    return out
