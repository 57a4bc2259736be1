"""Retrieval evaluation: recall@1, recall@3, MRR@10 and answerable questions declined, over a question set.

Ranks are over documents, not chunks: a question is answered by its document, and two
chunks of the same document must not count as two guesses. Every figure is what ``POST /ask``
offline (no chat model: the retriever itself decides "I don't know") would give: recall@3 is
its own search of 3, recall@1 and MRR come from one deeper search, and a declined question
counts as a miss and as declined. Proportions carry a 95 % Wilson interval: a change inside
it is not an improvement.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
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
    kind: str = ""  # same | other | short | mixed | noisy, where the set says


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of hits/n."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def share(hits: int, n: int) -> str:
    """``0.93 [0.81-0.98]``: a proportion with its interval."""
    lo, hi = wilson(hits, n)
    return f"{hits / max(n, 1):.2f} [{lo:.2f}-{hi:.2f}]"


@dataclass(frozen=True)
class EvalReport:
    name: str
    questions: int
    found_at_1: int
    found_at_3: int
    mrr: float
    declined: int  # answerable questions answered "I don't know"
    p50_ms: float
    misses: list[tuple[str, str, list[str]]]
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (found at 3, questions)

    @property
    def recall_at_1(self) -> float:
        return self.found_at_1 / max(self.questions, 1)

    @property
    def recall_at_3(self) -> float:
        return self.found_at_3 / max(self.questions, 1)

    def line(self) -> str:
        n = self.questions
        return (
            f"{self.name}: {n} questions  recall@1 {share(self.found_at_1, n)}  recall@3 {share(self.found_at_3, n)}  "
            f"MRR@{DEPTH} {self.mrr:.3f}  answerable declined {self.declined} ({share(self.declined, n)})  "
            f"search p50 {self.p50_ms:.2f} ms"
        )

    def kind_lines(self) -> list[str]:
        return [f"   {kind}: recall@3 {share(hit, n)} of {n}" for kind, (hit, n) in sorted(self.by_kind.items())]


def read_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append(
                Question(
                    item["id"], item["question"], item.get("expected", ""), item.get("lang", ""), item.get("kind", "")
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a question line ({exc})") from None
    return questions


async def evaluate(
    name: str, index: KnowledgeIndex, retriever: Retriever, questions: list[Question], min_score: float = 0.0
) -> EvalReport:
    """Recall, MRR and declines by document, counting only hits /ask would use (score >= min_score)."""
    r1 = r3 = declines = 0
    rr = 0.0
    latencies: list[float] = []
    misses: list[tuple[str, str, list[str]]] = []
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
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
        declines += not asked
        rr += 1 / rank if rank else 0.0
        if q.kind:
            kinds[q.kind][0] += expected in asked
            kinds[q.kind][1] += 1
        if rank != 1:
            misses.append((q.question, expected, names[:3]))
    n = max(len(questions), 1)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    by_kind = {k: (v[0], v[1]) for k, v in kinds.items()}
    return EvalReport(name, len(questions), r1, r3, rr / n, declines, p50, misses, by_kind)


async def declined(index: KnowledgeIndex, retriever: Retriever, questions: list[Question], min_score: float) -> int:
    """How many questions the hub would answer with "I don't know" (for an off-topic set)."""
    count = 0
    for q in questions:
        hits = await retriever.search(index, q.question, 1)
        count += not hits or hits[0].score < min_score
    return count
