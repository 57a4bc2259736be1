"""When a customer asks for a person: trigger words, and (when configured) the signs around them.

Matching folds case and width (ＨＵＭＡＮ, Human) and ignores spaces inside a phrase
("talk  to a person", "真 人"), so the way a customer types does not decide it. A Latin word must
stand on its own ("agent" matches "agent please", not "reagent"); CJK words match anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from core.kb.text import has_cjk

_SPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@lru_cache(maxsize=64)
def _pattern(triggers: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = []
    for trigger in triggers:
        folded = _fold(trigger)
        if not folded:
            continue
        body = r"\s*".join(re.escape(ch) for ch in folded.replace(" ", ""))
        parts.append(body if has_cjk(folded) else rf"(?<![\w]){body}(?![\w])")
    return re.compile("|".join(parts)) if parts else None


def asks_for_person(text: str, triggers: list[str]) -> bool:
    """A customer's message that contains one of the trigger words or phrases."""
    pattern = _pattern(tuple(triggers))
    return bool(pattern and pattern.search(_fold(text)))


def feedback_asks_for_person(rating: str, comment: str | None, triggers: list[str]) -> bool:
    """A 👎 whose comment asks for a person ("wrong, let me talk to a person")."""
    return rating == "down" and bool(comment) and asks_for_person(comment or "", triggers)


def request_phrase(triggers: list[str], language: str) -> str:
    """The configured trigger a "Talk to a person" button sends: the longest in the customer's
    script (zh-TW: a CJK one), else the longest of all."""
    cjk = [t for t in triggers if has_cjk(t)]
    latin = [t for t in triggers if t not in cjk]
    mine = (cjk if language == "zh-TW" else latin) or triggers
    return max(mine, key=len) if mine else "talk to a person"
