"""The prompt: numbered context, the answer-in-your-language rule, and citations."""

from __future__ import annotations

from core.kb.retriever import Hit
from core.kb.text import has_cjk
from core.llm.base import Message, Prompt

SYSTEM = (
    "You are the company's internal help assistant. Answer the question using only the "
    "numbered context passages. Answer in the same language as the question (Traditional "
    "Chinese, zh-TW, for a Chinese question). Cite every passage you use as [1], [2] right "
    "after the sentence it supports. If the context does not contain the answer, say you do "
    "not know and suggest asking the team that owns the topic. Be concise and concrete."
)


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
