"""Short, polite words for the chat platforms when there is no answer to give.

Adapters show these instead of silence or an error dump; the web API returns the
contract's JSON errors instead.
"""

from __future__ import annotations

import math

from core.errors import HubError
from core.llm.prompt import language_of

_TEXT = {
    # A handed-off customer's message over a limit: it did not reach the agents, and they are told.
    "relay_limited": (
        "That was a lot of messages at once: this one did not reach our team. Please send it again in {wait}.",
        "訊息有點多，這則沒有轉給客服人員，請 {wait} 後再傳一次。",
    ),
    "relay_quota": (
        "Our team cannot take more messages today: this one did not reach them. Please try again tomorrow.",
        "今天的訊息量已達上限，這則沒有轉給客服人員，請明天再試。",
    ),
    "rate_limited": (
        "You are asking a little fast. Please try again in {wait}.",
        "你問得有點快，請 {wait} 後再試一次。",
    ),
    "quota": (
        "Your department has used today's question quota. It resets at midnight.",
        "你的部門今天的提問額度已用完，將於午夜重置。",
    ),
    "unavailable": (
        "The answering service is busy or down right now. Please try again in a few minutes.",
        "回答服務目前忙碌或暫停中，請過幾分鐘再試一次。",
    ),
    "invalid_request": (
        "I could not read that question. Please send it as plain text (up to 2,000 characters).",
        "我看不懂這個問題，請用文字重新提問（2,000 字以內）。",
    ),
    "error": (
        "Something went wrong on my side. Please try again; if it keeps happening, tell IT (request {request_id}).",
        "系統發生問題，請再試一次；若持續發生，請告知 IT（請求編號 {request_id}）。",
    ),
    "text_only": (
        "I can answer text questions only. Please type your question.",
        "我只能回答文字問題，請直接輸入你的問題。",
    ),
}


NO_KNOWLEDGE = {
    "zh-TW": "抱歉，知識庫裡找不到與這個問題相關的資料。可以換個說法再問一次，或洽詢負責該業務的部門。",
    "en": "Sorry, I could not find anything about that in the knowledge base. Try asking in other words, "
    "or ask the team that owns the topic.",
}


def _wait(seconds: float | None, zh: bool) -> str:
    s = max(1, math.ceil(seconds or 1))
    if s < 60:
        return f"{s} 秒" if zh else f"{s} seconds"
    minutes = math.ceil(s / 60)
    return f"{minutes} 分鐘" if zh else f"{minutes} minutes"


def polite(kind: str, *, language: str = "en", retry_after: float | None = None, request_id: str = "") -> str:
    english, chinese = _TEXT.get(kind, _TEXT["error"])
    zh = language == "zh-TW"
    return (chinese if zh else english).format(wait=_wait(retry_after, zh), request_id=request_id or "-")


def for_error(error: Exception, question: str, request_id: str = "") -> str:
    """The message for a failed ask, in the question's language."""
    language = language_of(question)
    if isinstance(error, HubError):
        if error.type == "rate_limited":
            quota = "quota" in error.message or "budget" in error.message
            return polite("quota" if quota else "rate_limited", language=language, retry_after=error.retry_after)
        if error.type in ("unavailable", "upstream_timeout", "upstream_error"):
            return polite("unavailable", language=language)
        if error.type == "invalid_request":
            return polite("invalid_request", language=language)
    return polite("error", language=language, request_id=request_id)
