"""Core AskResult -> LINE messages.

LINE takes at most 5 messages per reply or push, and a text message of at most 5,000 UTF-16 code
units (an emoji outside the BMP counts two). An answer is therefore at most 4 text messages plus
one Flex bubble listing the sources, numbered as the answer cites them ([1], [2]); a longer
answer ends with "…" and a pointer to the web portal. 👍 / 👎 quick-reply buttons (postbacks
carrying the request id) sit on the last message, the only one whose quick reply LINE shows.
"""

from __future__ import annotations

from linebot.v3.messaging import (
    FlexBox,
    FlexBubble,
    FlexMessage,
    FlexSeparator,
    FlexText,
    Message,
    MessageAction,
    PostbackAction,
    QuickReply,
    QuickReplyItem,
    TextMessage,
    URIAction,
)

from core.llm.prompt import language_of
from core.messages import for_error, polite
from core.schema import AskResult, Source
from core.textsplit import split_text, utf16_len
from core.verified.mark import verified_line

from .translate import feedback_data

TEXT_LIMIT = 5000  # UTF-16 code units per text message
MAX_MESSAGES = 5  # per reply or push
MAX_SOURCES = 5
ALT_TEXT_LIMIT = 400

_MORE = {
    "zh-TW": "（回答較長，以上為節錄；完整內容請在 Ask Hub 網頁版輸入同一個問題查看。）",
    "en": "(The answer is longer than LINE allows; ask the same question in the Ask Hub web portal to read all of it.)",
}
_SOURCES = {"zh-TW": "資料來源", "en": "Sources"}
_THANKS = {"zh-TW": "謝謝你的回饋！", "en": "Thanks for the feedback!"}
_GREETING = (
    "您好！我是 Ask Hub 小幫手，可以依公司知識庫回答常見問題，例如請假、報帳、VPN、密碼與設備申請。"
    "請直接輸入問題；在群組中請 @我 或以「{prefix}」開頭提問。\n\n"
    "Hi! I'm the Ask Hub assistant. I answer questions from the company knowledge base "
    "(leave, expenses, VPN, passwords, equipment and more). Just type your question; "
    'in a group, mention me or start with "{prefix}".'
)


def answer_messages(result: AskResult) -> list[Message]:
    language = language_of(result.question)
    extra: list[Message] = []
    if result.sources:
        extra.append(sources_message(result.sources, language))
    line = verified_line(result.verified, result.question)
    texts = split_text(
        f"{result.answer}\n\n{line}" if line else result.answer,
        TEXT_LIMIT,
        measure=utf16_len,
        max_parts=MAX_MESSAGES - len(extra),
        ellipsis="…\n\n" + _MORE[language],
    ) or [result.answer.strip() or "…"]
    messages: list[Message] = [TextMessage(text=t) for t in texts]
    messages += extra
    return with_feedback(messages, result.request_id, language)


def sources_message(sources: list[Source], language: str) -> FlexMessage:
    # The answer cites sources as [n] in the core's order; chunks of one document share a line.
    cited: dict[str, list[int]] = {}
    links: dict[str, str] = {}  # a synced document's address: tapping its line opens it
    for n, source in enumerate(sources, 1):
        title = source.title.strip() or source.id
        cited.setdefault(title, []).append(n)
        if source.url and source.url.startswith(("https://", "http://")):
            links.setdefault(title, source.url)
    numbered = [
        ("".join(f"[{n}]" for n in numbers) + f" {_clip(title, 80)}", links.get(title))
        for title, numbers in list(cited.items())[:MAX_SOURCES]
    ]
    heading = _SOURCES[language]
    bubble = FlexBubble(
        size="mega",
        body=FlexBox(
            layout="vertical",
            spacing="sm",
            contents=[
                FlexText(text=heading, weight="bold", size="sm", color="#1DB446"),
                FlexSeparator(margin="sm"),
                *[
                    FlexText(
                        text=line,
                        size="xs",
                        color="#1E6FD9" if url else "#555555",
                        wrap=True,
                        action=URIAction(label=_clip(line, 20), uri=url) if url else None,
                    )
                    for line, url in numbered
                ],
            ],
        ),
    )
    alt = _clip(f"{heading}: " + "; ".join(line for line, _ in numbered), ALT_TEXT_LIMIT)
    return FlexMessage(alt_text=alt, contents=bubble)


def with_feedback(messages: list[Message], request_id: str, language: str) -> list[Message]:
    buttons = QuickReply(
        items=[
            QuickReplyItem(
                action=PostbackAction(label=label, data=feedback_data(request_id, rating, language), display_text=label)
            )
            for label, rating in (("👍", "up"), ("👎", "down"))
        ]
    )
    messages[-1].quick_reply = buttons
    return messages


def error_messages(error: Exception, question: str, request_id: str) -> list[Message]:
    return [TextMessage(text=for_error(error, question, request_id))]


def greeting(prefixes: list[str]) -> list[Message]:
    # Show a typed prefix ("/ask") rather than one that looks like a mention ("@bot").
    typed = [p for p in prefixes if p and not p.startswith("@")]
    prefix = next(iter(typed or [p for p in prefixes if p]), "/ask")
    return [TextMessage(text=_GREETING.format(prefix=prefix))]


def text_only() -> list[Message]:
    # No text to tell the language by: both, Traditional Chinese first.
    both = f"{polite('text_only', language='zh-TW')}\n{polite('text_only', language='en')}"
    return [TextMessage(text=both)]


def thanks(language: str, *, person: str | None = None) -> list[Message]:
    """``person``: after a 👎, a "talk to a person" button that sends this trigger as the user's message."""
    message = TextMessage(text=_THANKS.get(language, _THANKS["en"]))
    if person:
        label = "真人客服" if language == "zh-TW" else "Talk to a person"
        message.quick_reply = QuickReply(items=[QuickReplyItem(action=MessageAction(label=label, text=person))])
    return [message]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if utf16_len(text) <= limit:
        return text
    parts = split_text(text, limit, measure=utf16_len, max_parts=1)
    return parts[0] if parts else text[: limit // 2]
