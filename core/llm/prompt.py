"""The prompt: numbered context, the answer-in-your-language rule, citations, and the fixed
"no answer" signal with which the model says the passages do not answer the question."""

from __future__ import annotations

import re

from core.kb.retriever import Hit
from core.kb.text import has_cjk
from core.llm.base import Message, Prompt

# What the model replies, alone on its line, when the passages do not answer the question: a
# token no real answer is, so the hub can tell a decline from an answer (is_no_answer) and turn
# it into the same polite "I don't know" as a question with no evidence gets.
NO_ANSWER = "NO_ANSWER"

SYSTEM = (
    "You are the company's internal help assistant. Answer the question using only the "
    "numbered context passages. Answer in the same language as the question (Traditional "
    "Chinese, zh-TW, for a Chinese question). Cite every passage you use as [1], [2] right "
    "after the sentence it supports. The passages may be in another language than the question: "
    "use them all the same. If the passages do not contain the answer, reply with exactly "
    f"{NO_ANSWER} and nothing else — no apology, no guess from general knowledge. Be concise and concrete."
)

# Around the signal a model may put whitespace, quotes, markdown (bold, code, a heading, a
# quote), escapes (NO\_ANSWER) or a full stop; none of them changes what it says.
_WRAPPING = " \t\r\n\"'`*_~#>.。!！:：「」『』“”‘’"
_SIGNAL = re.compile(r"no[_ -]?answer", re.I)
_SPELLINGS = ("no_answer", "no answer", "no-answer", "noanswer")


def _first_line(text: str) -> tuple[str, bool]:
    """The reply's first line without its wrapping, and whether the line is complete."""
    body = text.replace("\\", "").lstrip(_WRAPPING)
    line, newline, _ = body.partition("\n")
    return line.strip(_WRAPPING), bool(newline)


def is_no_answer(text: str) -> bool:
    """True: the model's reply is the "no answer" signal (its first line, wrapped or not)."""
    line, _ = _first_line(text)
    return _SIGNAL.fullmatch(line) is not None


def may_be_no_answer(text: str) -> bool:
    """True while a streamed reply's beginning could still become the signal: the hub holds it
    back until it knows, so the signal never reaches the asker."""
    line, complete = _first_line(text)
    if complete:
        return False
    folded = line.casefold()
    return any(spelling.startswith(folded) for spelling in _SPELLINGS)


def language_of(text: str) -> str:
    return "zh-TW" if has_cjk(text) else "en"


def context_block(hits: list[Hit]) -> str:
    parts = []
    for n, hit in enumerate(hits, 1):
        heading = f"{hit.chunk.title} — {hit.chunk.section}" if hit.chunk.section else hit.chunk.title
        parts.append(f"[{n}] {heading}\n{hit.chunk.text}")
    return "\n\n".join(parts)


def build_prompt(question: str, hits: list[Hit], history: list[Message] | None = None) -> Prompt:
    messages = [Message("system", SYSTEM), *(history or [])]
    messages.append(Message("user", f"Context:\n{context_block(hits)}\n\nQuestion: {question}"))
    return Prompt(question=question, hits=hits, messages=messages, language=language_of(question))
