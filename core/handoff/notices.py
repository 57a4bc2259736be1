"""What the customer and the agents are told, in the customer's language (zh-TW or English)."""

from __future__ import annotations

from core.llm.prompt import language_of

_CUSTOMER = {
    "started": (
        "I'm handing you over to a person on our team. They will answer you right here — please wait a moment.",
        "已為您轉接真人客服，專人會在這裡直接回覆您，請稍候。",
    ),
    "ended": (
        "Our team member has closed this conversation. I'm back — ask me anything.",
        "真人客服已結束本次對話。接下來由我繼續為您服務，有問題隨時問我。",
    ),
    "idle": (
        "This conversation with our team was closed because it was quiet for a while. I'm back — ask me anything.",
        "由於一段時間沒有新訊息，本次真人客服對話已結束。接下來由我繼續為您服務。",
    ),
}


def language(text: str) -> str:
    return language_of(text)


def customer(kind: str, lang: str) -> str:
    english, chinese = _CUSTOMER[kind]
    return chinese if lang == "zh-TW" else english


def duration(seconds: float) -> str:
    """A short duration for the agents' message: 4 min 12 s, 1 h 3 min."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"
