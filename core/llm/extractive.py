"""The offline answerer: the lines of the retrieved passages that answer the question, quoted
verbatim and cited, and the document to read for the rest.

It invents nothing — every line is a sentence or list item of a passage, copied as written —
which makes it a safe default with no key and no network. A line is chosen for:

- the question's words it holds (idf over the passages; a word found only in the passage's
  title or heading counts half) and, with a semantic embedder, its meaning (cosine to the
  question, normalised per question: across languages the only signal);
- what the question asks for: a how-to question prefers the steps of a procedure, a
  how-much or when question lines with figures, and a sentence about the document itself
  ("This guide explains…", "本辦法適用於…") is a weak answer unless the question asks about scope;
- its passage's retrieval score, relative to the best passage's.

A numbered procedure is answered whole; a line that introduces a list brings its items. The
answer ends with the sources it quotes and the document to read for the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np

from core.kb.embedders import Embedder, HashEmbedder, embed_query
from core.kb.intent import HOW_TO_QUESTION
from core.kb.store import Chunk
from core.kb.text import lexical_terms, split_sentences
from core.llm.base import Completion, Prompt

log = logging.getLogger("askhub.extractive")

MAX_LINES = 6
MAX_CHARS = 700
MAX_STEPS = 12  # a procedure is kept whole up to this many steps, over MAX_LINES if need be
MAX_STEP_CHARS = 1400
PASSAGES = 4
KEEP = 0.55  # a further line must score this share of the best line …
KEEP_OTHER = 0.7  # … or this share when it comes from another passage than the best line
HEADING_SHARE = 0.5  # a question word found only in the passage's title or heading counts half
MEANING_SHARE = 0.4  # weight of the embedder's similarity when there is one
MEANING_LINES = 6  # lines in another language ranked by meaning (each costs a model pass) …
MEANING_PER_PASSAGE = 3  # … at most this many from one passage …
MEANING_CHARS = 200  # … each read this far (a line's start says what it is about)
OTHER_LANGUAGE = 0.8  # a line in another language than the question's is harder to use
STEP_BONUS = 1.3
FIGURE_BONUS = 1.25
ABOUT_DOCUMENT = 0.4
LIST_SHARE = 0.5  # of its items' mean score that a line introducing a list adds to its own

LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
STEP = re.compile(r"^\s*\d{1,2}[.)]\s+")
# Items of a list that reached the passage on one line ("- A. - B.", "1. A. 2. B."): a marker
# right after the end of the previous item starts the next.
INLINE_ITEM = re.compile(r"(?<=[.!?。！？;；)）])\s+(?=(?:[-*•]|\d{1,2}[.)])\s+\S)")

ABOUT_DOCUMENT_RE = re.compile(
    r"^(?:this|the present) (?:guide|page|document|policy|article|handbook|manual|section|chapter|faq|code|note)\b"
    r"|\b(?:guide|page|document|policy|article|handbook|manual|faq) (?:explains|describes|covers|sets out|outlines"
    r"|summari[sz]es|is (?:only )?about|applies)\b"
    r"|^it applies to\b|\b(?:is|are) covered (?:in|by) (?:the|a|our) (?:separate )?(?:guide|page|document|policy)\b"
    r"|^本(?:辦法|政策|規定|文件|指南|手冊|頁|準則|規範|制度|須知|章|節|說明)"
    r"|(?:辦法|政策|規定|指南|手冊|準則|規範|制度)(?:適用於|旨在|說明)",
    re.I,
)
SCOPE_QUESTION = re.compile(
    r"\bappl(?:y|ies)\b|\bcover(?:s|ed)?\b|\beligib|\bwho (?:can|may|is)\b|\bscope\b|\bpurpose\b"
    r"|適用|範圍|對象|資格|目的",
    re.I,
)
FIGURE_QUESTION = re.compile(
    r"\bhow (?:much|many|long|often|old|soon|far)\b|\bwhen\b|\bwhat time\b|\bdeadline\b|\blimit\b|\bmaximum\b"
    r"|\bminimum\b|\bcost\b|\bprice\b|\brate\b|\ballowance\b|\bbudget\b|多少|幾|多久|多長|何時|什麼時候|上限|期限|金額"
    r"|額度|天數|時數|日期",
    re.I,
)
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")
FIGURE = re.compile(r"\d|[一二兩三四五六七八九十百千萬半]+\s*(?:天|日|週|個月|月|年|小時|次|倍|成|元)")

LEAD = {"zh-TW": "根據知識庫：", "en": "From the knowledge base:"}
LEAD_OTHER_LANGUAGE = {
    "zh-TW": "根據知識庫（原文引用）：",
    "en": "From the knowledge base (quoted in its original language):",
}
SOURCES = {"zh-TW": "引用來源：", "en": "Sources: "}
SOURCE_SEPARATOR = {"zh-TW": "；", "en": "; "}
READ_MORE = {"zh-TW": "其餘內容請見〈{title}〉（{doc}）。", "en": "For the rest, read “{title}” ({doc})."}


@dataclass(frozen=True, slots=True)
class _Line:
    passage: int
    position: int
    text: str
    terms: frozenset[str]
    heading: frozenset[str]  # terms of the document title and section the line sits under
    is_item: bool
    is_step: bool  # an item of a numbered list: a procedure, answered whole
    about_document: bool  # says what the document is or covers, not what to do
    has_figure: bool
    language: str  # the language most of it is written in


def _language(text: str) -> str:
    """Mostly Chinese or not: an English line quoting a term (旅平險) is still English."""
    cjk = len(CJK.findall(text))
    return "zh-TW" if cjk and cjk >= 0.3 * (cjk + len(LATIN.findall(text))) else "en"


def _weight(term: str) -> float:
    # A single CJK character says little on its own; bigrams and words carry the meaning.
    return 0.25 if len(term) == 1 and ord(term) > 0x2E80 else 1.0


class ExtractiveProvider:
    """The answerer behind the ``extractive`` model. With a semantic embedder, lines a question
    in another language cannot reach by words are ranked by meaning. The hash embedder is left
    out (it sees the same words again), and so is a remote one (``openai:``): the offline
    answer makes no network call."""

    model = "extractive"

    def __init__(self, embedder: Embedder | None = None) -> None:
        semantic = embedder is not None and not isinstance(embedder, HashEmbedder)
        self._embedder = embedder if semantic and not embedder.name.startswith("openai:") else None

    async def complete(self, prompt: Prompt, *, temperature: float = 0.0, max_tokens: int = 0) -> Completion:
        text = await answer_async(prompt, self._embedder)
        return Completion(text=text, model=self.model, prompt_tokens=0, completion_tokens=0)

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


async def answer_async(prompt: Prompt, embedder: Embedder | None = None) -> str:
    """``answer`` off the event loop. With a semantic ``embedder`` and a question in another
    language than the best passage's — where words cannot rank lines — the first lines of the
    passages in that other language (MEANING_LINES at most) are ranked by meaning too: a model
    pass per line, spent only there."""
    lines = await asyncio.to_thread(_lines, prompt)
    if embedder is None or not lines or _passage_language(prompt, 0) == prompt.language:
        return await asyncio.to_thread(_compose, prompt, lines, None)
    ranked: list[_Line] = []
    for passage in range(min(len(prompt.hits), PASSAGES)):
        if _passage_language(prompt, passage) != prompt.language:
            ranked += [line for line in lines if line.passage == passage][:MEANING_PER_PASSAGE]
    ranked = ranked[:MEANING_LINES]
    try:
        rows = await embedder.embed([line.text[:MEANING_CHARS] for line in ranked])
        question = await embed_query(embedder, prompt.question)
    except Exception as exc:  # ranking by meaning is a refinement: the passage's order still answers
        log.warning("sentence embedding failed; ranking by words", extra={"exc": type(exc).__name__})
        return await asyncio.to_thread(_compose, prompt, lines, None)
    near = dict(zip(((line.passage, line.position) for line in ranked), _closeness(question, rows), strict=True))
    closeness = [near.get((line.passage, line.position), 0.0) for line in lines]
    return await asyncio.to_thread(_compose, prompt, lines, closeness)


def _passage_language(prompt: Prompt, passage: int) -> str:
    chunk = prompt.hits[passage].chunk
    return _language(f"{chunk.title} {chunk.section} {chunk.text}")


def answer(prompt: Prompt) -> str:
    """The answer from words alone (no embedder), computed in the caller's thread."""
    return _compose(prompt, _lines(prompt), None)


def _closeness(question: np.ndarray, rows: np.ndarray) -> list[float]:
    """Each line's cosine to the question, rescaled to [0, 1] over this question's lines."""
    sims = rows @ question
    low, high = float(sims.min()), float(sims.max())
    if high - low < 1e-6:
        return [0.0] * len(sims)
    return [float(s) for s in (sims - low) / (high - low)]


def _split_items(raw: str) -> list[str]:
    return [part for part in INLINE_ITEM.split(raw) if part.strip()] if LIST_ITEM.match(raw) else [raw]


def _lines(prompt: Prompt) -> list[_Line]:
    lines: list[_Line] = []
    for rank, hit in enumerate(prompt.hits[:PASSAGES]):
        position = 0
        heading = frozenset(lexical_terms(f"{hit.chunk.title} {hit.chunk.section}"))
        for raw_line in hit.chunk.text.splitlines():
            for raw in _split_items(raw_line):
                is_item = bool(LIST_ITEM.match(raw))
                for sentence in [raw.strip()] if is_item else split_sentences(raw):
                    text = LIST_ITEM.sub("", sentence).strip()
                    if len(text) < 4:
                        continue
                    lines.append(
                        _Line(
                            passage=rank,
                            position=position,
                            text=text,
                            terms=frozenset(lexical_terms(text)),
                            heading=heading,
                            is_item=is_item,
                            is_step=bool(STEP.match(raw)),
                            about_document=bool(ABOUT_DOCUMENT_RE.search(text)),
                            has_figure=bool(FIGURE.search(text)),
                            language=_language(text),
                        )
                    )
                    position += 1
    return lines


def _scores(prompt: Prompt, lines: list[_Line], closeness: Sequence[float] | None) -> list[float]:
    """How well each line answers, times the square of its passage's retrieval score relative
    to the best passage's: the retriever saw the whole passage, its title, synonyms and the
    index's own idf, which a line's few words cannot."""
    question = prompt.question
    query = Counter(lexical_terms(question))
    # idf over the passages: a word in every passage says nothing, while a word repeated
    # through one passage is what that passage is about (it must not count less for it).
    held: dict[int, set[str]] = {}
    for line in lines:
        held.setdefault(line.passage, set()).update(t for t in line.terms | line.heading if t in query)
    df = Counter(t for terms in held.values() for t in terms)
    n = len(held)
    weights = {t: _weight(t) * math.log(1 + n / df[t]) for t in df}
    total = sum(_weight(t) * math.log(1 + n) for t in query) or 1.0
    how_to = bool(HOW_TO_QUESTION.search(question))
    figures = bool(FIGURE_QUESTION.search(question))
    scope = bool(SCOPE_QUESTION.search(question))
    if closeness is None and _passage_language(prompt, 0) != prompt.language:
        return _in_order(lines)
    top = max(prompt.hits[0].score, 1e-9)
    priors = [min(1.0, max(0.25, (hit.score / top) ** 2)) for hit in prompt.hits[:PASSAGES]]
    scores: list[float] = []
    for i, line in enumerate(lines):
        matched = sum(
            w if t in line.terms else HEADING_SHARE * w if t in line.heading else 0.0 for t, w in weights.items()
        )
        score = matched / total
        if closeness is not None:
            score = (1 - MEANING_SHARE) * score + MEANING_SHARE * closeness[i]
        if how_to and line.is_step:
            score *= STEP_BONUS
        if figures and line.has_figure:
            score *= FIGURE_BONUS
        if line.about_document and not scope:
            score *= ABOUT_DOCUMENT
        if line.language != prompt.language:
            score *= OTHER_LANGUAGE
        scores.append(score * priors[line.passage])
    return scores


def _in_order(lines: list[_Line]) -> list[float]:
    """When words cannot rank lines (another language, no shared word): the best passage
    answers, in its own order."""
    return [1.0 / (1 + 0.1 * line.position) if line.passage == 0 else 0.0 for line in lines]


def _compose(prompt: Prompt, lines: list[_Line], closeness: Sequence[float] | None) -> str:
    if not lines or (not lexical_terms(prompt.question) and closeness is None):
        return ""
    scores = _scores(prompt, lines, closeness)
    score = {(line.passage, line.position): s for line, s in zip(lines, scores, strict=True)}
    for line in lines:  # a line introducing a list says what the list as a whole says, too
        items = _list_after(lines, line)[1:]
        if items:
            mean = sum(score[(i.passage, i.position)] for i in items) / len(items)
            score[(line.passage, line.position)] += LIST_SHARE * mean
    ranked = sorted(lines, key=lambda line: (-score[(line.passage, line.position)], line.passage, line.position))
    if score[(ranked[0].passage, ranked[0].position)] <= 0:  # no line holds a word of the question
        score = {(line.passage, line.position): s for line, s in zip(lines, _in_order(lines), strict=True)}
        ranked = sorted(lines, key=lambda line: (-score[(line.passage, line.position)], line.passage, line.position))
    best_line = ranked[0]
    best = score[(best_line.passage, best_line.position)]
    chosen: dict[tuple[int, int], _Line] = {}
    used = 0
    for line in ranked:
        s = score[(line.passage, line.position)]
        if len(chosen) >= MAX_LINES or s < KEEP * best:
            break
        if line.passage != best_line.passage and s < KEEP_OTHER * best:
            continue
        block = _steps_around(lines, line) or _list_after(lines, line) or [line]
        whole = any(item.is_step for item in block)
        for item in block:
            key = (item.passage, item.position)
            limit = MAX_STEP_CHARS if whole else MAX_CHARS
            if key not in chosen and (not chosen or used + len(item.text) <= limit):
                chosen[key] = item
                used += len(item.text)
    # Passages in the order of their best line, each in document order: the answer leads.
    lead_of: dict[int, float] = {}
    for line in chosen.values():
        lead_of[line.passage] = max(lead_of.get(line.passage, 0.0), score[(line.passage, line.position)])
    picked = sorted(chosen.values(), key=lambda line: (-lead_of[line.passage], line.passage, line.position))
    return _render(prompt, picked, best_line)


def _render(prompt: Prompt, picked: list[_Line], best: _Line) -> str:
    language = prompt.language
    same_language = any(line.language == language for line in picked)
    lead = (LEAD if same_language else LEAD_OTHER_LANGUAGE)[language]
    cited = list(dict.fromkeys(line.passage for line in picked))
    sources = SOURCE_SEPARATOR[language].join(f"[{n + 1}] {_heading(prompt, n)}" for n in cited)
    main = _document_to_read(prompt, best)
    return "\n".join(
        [
            lead,
            *(f"- {line.text} [{line.passage + 1}]" for line in picked),
            "",
            SOURCES[language] + sources,
            READ_MORE[language].format(title=main.title, doc=main.doc_id),
        ]
    )


def _document_to_read(prompt: Prompt, best: _Line) -> Chunk:
    """The best line's document — or the one it sends the reader to ("as described in the
    “Travel Expense Claims” guide", "請依〈…〉辦理") when that document was retrieved too."""
    own = prompt.hits[best.passage].chunk
    text = best.text.casefold()
    for hit in prompt.hits:
        title = hit.chunk.title.strip()
        if hit.chunk.doc_id != own.doc_id and len(title) >= 4 and title.casefold() in text:
            return hit.chunk
    return own


def _heading(prompt: Prompt, passage: int) -> str:
    chunk = prompt.hits[passage].chunk
    return f"{chunk.title} — {chunk.section}" if chunk.section else chunk.title


def _list_after(lines: list[_Line], line: _Line) -> list[_Line]:
    """A line that introduces a list ("天數如下：", "as follows:") brings its items along."""
    if not line.text.endswith((":", "：")):
        return []
    items: list[_Line] = [line]
    for other in lines:
        if other.passage == line.passage and other.position > line.position:
            if not other.is_item or len(items) > MAX_LINES:
                break
            items.append(other)
    return items if len(items) > 1 else []


def _steps_around(lines: list[_Line], line: _Line) -> list[_Line]:
    """One step of a numbered procedure (or the line introducing it) brings the whole procedure."""
    same = [other for other in lines if other.passage == line.passage]
    at = same.index(line)
    if not line.is_step:
        if at + 1 < len(same) and same[at + 1].is_step and line.text.endswith((":", "：")):
            return [line, *_steps_around(lines, same[at + 1])]
        return []
    first, last = at, at
    while first > 0 and same[first - 1].is_step:
        first -= 1
    while last + 1 < len(same) and same[last + 1].is_step:
        last += 1
    return same[first : last + 1][:MAX_STEPS]
