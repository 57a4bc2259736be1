"""The "✅ Verified by …" line of a verified answer on every chat platform (and none otherwise)."""

from __future__ import annotations

from typing import Any

from adapters.discord import render as discord
from adapters.line import render as line
from adapters.slack import render as slack
from core.schema import AskResult, Usage

MARK = {"id": "abc", "by": "Alice Chen", "at": 1.0, "collection": "public"}


def result(question: str = "How do I return an order?", verified: dict[str, Any] | None = MARK) -> AskResult:
    return AskResult(question=question, answer="Open the order page and choose Return.", sources=[],
                     model="verified", cached=False, usage=Usage(), request_id="r1", verified=verified)  # fmt: skip


def platform_texts(answer: AskResult) -> dict[str, str]:
    return {
        "slack": str(slack.answer_blocks(answer)),
        "line": " ".join(m.text for m in line.answer_messages(answer) if hasattr(m, "text") and m.text),
        "discord": " ".join(m["content"] for m in discord.answer_messages(answer)),
    }


def test_each_platform_shows_who_verified_the_answer() -> None:
    for name, text in platform_texts(result()).items():
        assert "✅ Verified by Alice Chen" in text, name
        assert "Open the order page" in text, name
    for name, text in platform_texts(result("怎麼退貨?")).items():
        assert "✅ 已由 Alice Chen 確認" in text, name


def test_an_answer_nobody_verified_has_no_mark() -> None:
    for name, text in platform_texts(result(verified=None)).items():
        assert "✅" not in text and "Verified" not in text, name
