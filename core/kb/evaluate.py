"""Retrieval evaluation: recall@1, recall@3 and MRR@10 over a question set.

Ranks are over documents, not chunks: a question is answered by its document, and two
chunks of the same document must not count as two guesses. recall@3 is what ``POST /ask``
with ``top_k`` 3 returns (its own search of 3: the seats a sure side keeps, retriever.seats,
are places among those 3); recall@1 and MRR come from one deeper search.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from core.kb.retriever import Retriever
from core.kb.store import KnowledgeIndex

DEPTH = 10


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    expected: str
    lang: str


@dataclass(frozen=True)
class EvalReport:
    name: str
    questions: int
    recall_at_1: float
    recall_at_3: float
    mrr: float
    p50_ms: float
    misses: list[tuple[str, str, list[str]]]

    def line(self) -> str:
        return (
            f"{self.name}: {self.questions} questions  recall@1 {self.recall_at_1:.3f}  "
            f"recall@3 {self.recall_at_3:.3f}  MRR@{DEPTH} {self.mrr:.3f}  search p50 {self.p50_ms:.2f} ms"
        )


def read_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append(Question(item["id"], item["question"], item.get("expected", ""), item.get("lang", "")))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a question line ({exc})") from None
    return questions


async def evaluate(
    name: str, index: KnowledgeIndex, retriever: Retriever, questions: list[Question], min_score: float = 0.0
) -> EvalReport:
    """Recall and MRR by document, counting only hits /ask would use (score >= min_score)."""
    r1 = r3 = rr = 0.0
    latencies: list[float] = []
    misses: list[tuple[str, str, list[str]]] = []
    for q in questions:
        started = time.perf_counter()
        hits = [h for h in await retriever.search(index, q.question, DEPTH * 2) if h.score >= min_score]
        latencies.append((time.perf_counter() - started) * 1000)
        asked = [h.chunk.doc_id.rsplit("/", 1)[-1] for h in await retriever.search(index, q.question, 3)
                 if h.score >= min_score]  # fmt: skip
        ranked: list[str] = []
        for hit in hits:
            if hit.chunk.doc_id not in ranked:
                ranked.append(hit.chunk.doc_id)
        names = [doc.rsplit("/", 1)[-1] for doc in ranked[:DEPTH]]
        expected = q.expected.rsplit("/", 1)[-1]
        rank = names.index(expected) + 1 if expected in names else 0
        r1 += rank == 1
        r3 += expected in asked
        rr += 1 / rank if rank else 0.0
        if rank != 1:
            misses.append((q.question, expected, names[:3]))
    n = max(len(questions), 1)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    return EvalReport(name, len(questions), r1 / n, r3 / n, rr / n, p50, misses)


async def declined(index: KnowledgeIndex, retriever: Retriever, questions: list[Question], min_score: float) -> int:
    """How many questions the hub would answer with "I don't know" (for an off-topic set)."""
    count = 0
    for q in questions:
        hits = await retriever.search(index, q.question, 1)
        count += not hits or hits[0].score < min_score
    return count
