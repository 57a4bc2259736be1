"""The line a platform shows under a verified answer, in the question's language."""

from __future__ import annotations

from typing import Any

from core.llm.prompt import language_of

_LINE = {"zh-TW": "✅ 已由 {by} 確認", "en": "✅ Verified by {by}"}


def verified_line(verified: dict[str, Any] | None, question: str) -> str | None:
    """None for an answer no person verified."""
    if not verified:
        return None
    return _LINE[language_of(question)].format(by=" ".join(str(verified.get("by", "")).split())[:80])
