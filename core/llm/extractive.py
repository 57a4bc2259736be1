"""The offline answerer: the most relevant sentences of the retrieved passages, cited.

It invents nothing — every line is quoted from the knowledge base — which makes it a safe
default with no key and no network, and a useful answer for short factual questions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from core.kb.text import lexical_terms, split_sentences
from core.llm.base import Completion, Prompt
from core.llm.prompt import language_of

MAX_LINES = 6
MAX_CHARS = 700
PASSAGES = 3
LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
STEP = re.compile(r"^\s*\d+[.)]\s+")

LEAD = {"zh-TW": "根據知識庫：", "en": "From the knowledge base:"}
LEAD_OTHER_LANGUAGE = {
    "zh-TW": "根據知識庫（原文引用）：",
    "en": "From the knowledge base (quoted in its original language):",
}


HEADING_SHARE = 0.5  # a question word found only in the passage's title or heading counts half


@dataclass(frozen=True, slots=True)
class _Line:
    passage: int
    position: int
    text: str
    terms: frozenset[str]
    is_item: bool
    heading: frozenset[str]  # terms of the document title and section the line sits under
    is_step: bool  # an item of a numbered list: a procedure, answered whole


def _weight(term: str) -> float:
    # A single CJK character says little on its own; bigrams and words carry the meaning.
    return 0.25 if len(term) == 1 and ord(term) > 0x2E80 else 1.0


class ExtractiveProvider:
    model = "extractive"

    async def complete(self, prompt: Prompt, *, temperature: float = 0.0, max_tokens: int = 0) -> Completion:
        return Completion(text=answer(prompt), model=self.model, prompt_tokens=0, completion_tokens=0)

    async def stream(
        self, prompt: Prompt, *, temperature: float = 0.0, max_tokens: int = 0
    ) -> AsyncIterator[str | Completion]:
        completion = await self.complete(prompt)
        for line in completion.text.splitlines(keepends=True):
            yield line
        yield completion

    async def ping(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def _lines(prompt: Prompt) -> list[_Line]:
    lines: list[_Line] = []
    for rank, hit in enumerate(prompt.hits[:PASSAGES]):
        position = 0
        heading = frozenset(lexical_terms(f"{hit.chunk.title} {hit.chunk.section}"))
        for raw in hit.chunk.text.splitlines():
            is_item = bool(LIST_ITEM.match(raw))
            for sentence in [raw.strip()] if is_item else split_sentences(raw):
                text = LIST_ITEM.sub("", sentence).strip()
                if len(text) >= 4:
                    lines.append(
                        _Line(
                            rank,
                            position,
                            text,
                            frozenset(lexical_terms(text)),
                            is_item,
                            heading,
                            bool(STEP.match(raw)),
                        )
                    )
                    position += 1
    return lines


def answer(prompt: Prompt) -> str:
    query = Counter(lexical_terms(prompt.question))
    lines = _lines(prompt)
    if not lines or not query:
        return ""
    # Local idf over the candidate lines: a term in every line discriminates nothing.
    df = Counter(t for line in lines for t in line.terms | line.heading if t in query)
    n = len(lines)
    weights = {t: _weight(t) * math.log(1 + n / df[t]) for t in df}
    total = sum(_weight(t) * math.log(1 + n) for t in query) or 1.0

    def matched(line: _Line) -> float:
        return sum(
            w if t in line.terms else HEADING_SHARE * w if t in line.heading else 0.0 for t, w in weights.items()
        )

    scores = {(line.passage, line.position): matched(line) / total * (1.0 - 0.2 * line.passage) for line in lines}

    def score(line: _Line) -> float:
        return scores[(line.passage, line.position)]

    ranked = sorted(lines, key=lambda line: (-score(line), line.passage, line.position))
    best = score(ranked[0])
    chosen: dict[tuple[int, int], _Line] = {}
    used = 0
    for line in ranked:
        if len(chosen) >= MAX_LINES or (chosen and score(line) < 0.5 * best):
            break
        for item in [*_steps_around(lines, line), *_list_after(lines, line)] or [line]:
            key = (item.passage, item.position)
            if key not in chosen and (not chosen or used + len(item.text) <= MAX_CHARS):
                chosen[key] = item
                used += len(item.text)
    picked = sorted(chosen.values(), key=lambda line: (line.passage, line.position))
    same_language = any(language_of(line.text) == prompt.language for line in picked)
    lead = (LEAD if same_language else LEAD_OTHER_LANGUAGE)[prompt.language]
    return "\n".join([lead, *(f"- {line.text} [{line.passage + 1}]" for line in picked)])


def _list_after(lines: list[_Line], line: _Line) -> list[_Line]:
    """A line that introduces a list ("天數如下：", "as follows:") brings its items along."""
    if not line.text.endswith((":", "：")):
        return []
    items: list[_Line] = []
    for other in lines:
        if other.passage == line.passage and other.position > line.position:
            if not other.is_item or len(items) == MAX_LINES:
                break
            items.append(other)
    return items


def _steps_around(lines: list[_Line], line: _Line) -> list[_Line]:
    """One step of a numbered procedure brings the whole procedure; any other line, itself."""
    if not line.is_step:
        return [line]
    same = [other for other in lines if other.passage == line.passage]
    at = same.index(line)
    first, last = at, at
    while first > 0 and same[first - 1].is_step:
        first -= 1
    while last + 1 < len(same) and same[last + 1].is_step:
        last += 1
    return same[first : last + 1][:MAX_LINES]
