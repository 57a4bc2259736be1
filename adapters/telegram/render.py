"""Core AskResult -> Telegram messages (pure: text and python-telegram-bot's inline keyboards).

A Telegram message holds at most 4,096 characters; the answer is split there by core's splitter
(at most four messages, the last ending with a pointer to the portal when cut), the sources it
cites ([1], [2]) close the last one, and 👍 / 👎 (and, in a private chat a person can take,
"Talk to a person") sit under it as inline buttons. Plain text: no parse mode to escape.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from core.llm.prompt import language_of
from core.messages import for_error, polite
from core.schema import AskResult, Source
from core.textsplit import split_text
from core.verified.mark import verified_line

from .translate import feedback_data, person_data

TEXT_LIMIT = 4096
MAX_MESSAGES = 4
MAX_SOURCES = 5
THINKING = "💭 …"

_MORE = {
    "zh-TW": "（回答較長，以上為節錄；完整內容請在 Ask Hub 網頁版輸入同一個問題查看。）",
    "en": "(The answer is longer than Telegram allows; ask the same question in the Ask Hub web portal to read "
    "all of it.)",
}
_SOURCES = {"zh-TW": "資料來源", "en": "Sources"}
_PERSON = {"zh-TW": "真人客服", "en": "Talk to a person"}
_THANKS = {"zh-TW": "謝謝你的回饋！", "en": "Thanks for the feedback!"}
_GREETING = (
    "您好！我是 Ask Hub 小幫手，可以依公司知識庫回答常見問題。請直接輸入問題；在群組中請 @{name} 或用 /ask 提問。\n\n"
    "Hi! I'm the Ask Hub assistant. I answer questions from the company knowledge base. Just type your "
    "question; in a group, mention @{name} or use /ask."
)


@dataclass(frozen=True, slots=True)
class Out:
    text: str
    markup: InlineKeyboardMarkup | None = None


def answer_messages(result: AskResult, *, person: bool = False) -> list[Out]:
    language = language_of(result.question)
    line = verified_line(result.verified, result.question)
    answer = f"{result.answer}\n\n{line}" if line else result.answer
    footer = sources_text(result.sources, language)
    whole = f"{answer.strip()}\n\n{footer}" if footer else answer.strip()
    parts = split_text(whole, TEXT_LIMIT, max_parts=MAX_MESSAGES, ellipsis="…\n\n" + _MORE[language])
    parts = parts or [whole or "…"]
    if footer and footer not in parts[-1]:  # the answer was cut short: the sources still close it
        parts[-1] = split_text(parts[-1], TEXT_LIMIT - len(footer) - 2, max_parts=1)[0] + "\n\n" + footer
    keyboard = feedback_keyboard(result.request_id, language, person=person)
    return [Out(p) for p in parts[:-1]] + [Out(parts[-1], keyboard)]


def sources_text(sources: list[Source], language: str) -> str:
    cited: dict[str, list[int]] = {}
    for n, source in enumerate(sources, 1):
        cited.setdefault(source.title.strip() or source.id, []).append(n)
    lines = ["".join(f"[{n}]" for n in numbers) + f" {_clip(title, 80)}" for title, numbers in cited.items()]
    return f"{_SOURCES[language]}:\n" + "\n".join(lines[:MAX_SOURCES]) if lines else ""


def feedback_keyboard(request_id: str, language: str, *, person: bool) -> InlineKeyboardMarkup:
    row = [InlineKeyboardButton("👍", callback_data=feedback_data(request_id, "up", language)),
           InlineKeyboardButton("👎", callback_data=feedback_data(request_id, "down", language))]  # fmt: skip
    if person:
        row.append(InlineKeyboardButton(_PERSON[language], callback_data=person_data(request_id, language)))
    return InlineKeyboardMarkup([row])


def progress(text: str) -> str:
    """The answer so far, as it grows (cut to fit: the final messages follow)."""
    text = text.strip() or THINKING
    return text if len(text) <= TEXT_LIMIT - 2 else text[: TEXT_LIMIT - 2] + " …"


def error_message(error: Exception, question: str, request_id: str) -> list[Out]:
    return [Out(for_error(error, question, request_id))]


def text(value: str) -> list[Out]:
    return [Out(value or polite("error"))]


def media_note() -> list[Out]:
    return [Out(f"{polite('text_only', language='zh-TW')}\n{polite('text_only', language='en')}")]


def greeting(username: str) -> list[Out]:
    return [Out(_GREETING.format(name=username))]


def thanks(language: str) -> str:
    """Shown as the button tap's toast."""
    return _THANKS[language]


def offer_person(language: str, request_id: str) -> list[Out]:
    button = InlineKeyboardButton(_PERSON[language], callback_data=person_data(request_id, language))
    return [Out(_THANKS[language], InlineKeyboardMarkup([[button]]))]


def _clip(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
