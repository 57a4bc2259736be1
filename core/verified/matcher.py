"""Which verified answer, if any, answers a question: the same question, or a close paraphrase.

A question matches when its normalised, redacted text equals a verified question, or when
the embedder finds them at least ``threshold`` alike (cosine) and both name the same numbers.
The thresholds are strict because an embedding sees "annual" and "sick" leave as close:
measured with e5 on pairs written for it, rewordings of one question scored 0.965–0.984
("How do I reset my password?" / "how can i reset my password" 0.982) while questions about
something else scored up to 0.957 ("How many days of annual leave do I get?" / "… parental
leave …"; "… reset my password" / "… reset my VPN password" 0.954). The hash embedder only
sees shared words, so there only near-identical wording (0.85) counts.

Only the asker's collections are searched: the wall between doors holds for verified answers
as for the knowledge base.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import numpy as np

from core.cache import normalise
from core.kb.embedders import Embedder, HashEmbedder, embed_query
from core.verified.model import VerifiedAnswer

THRESHOLDS = {"e5": 0.96, "hash": 0.85}
DEFAULT_THRESHOLD = 0.96
_DIGITS = re.compile(r"\d+")


def default_threshold(embedder: Embedder) -> float:
    name = embedder.name
    if name.startswith("hash"):
        return THRESHOLDS["hash"]
    return THRESHOLDS["e5"] if name.startswith("e5") else DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class _Entry:
    answer: VerifiedAnswer
    norm: str
    vector: np.ndarray
    digits: tuple[str, ...]


class Matcher:
    def __init__(self, embedder: Embedder, threshold: float) -> None:
        self._embedder = embedder
        self.threshold = threshold
        self._by_collection: dict[str, list[_Entry]] = {}
        self._vectors: dict[str, np.ndarray] = {}  # normalised question -> vector (edits reuse them)

    def has_any(self, collections: frozenset[str]) -> bool:
        return any(self._by_collection.get(c) for c in collections)

    async def embed(self, text: str) -> np.ndarray:
        """A question's vector, never computed on the event loop."""
        if isinstance(self._embedder, HashEmbedder):
            return (await asyncio.to_thread(self._embedder.embed_sync, [text]))[0]
        return await embed_query(self._embedder, text)  # e5 runs in a thread; openai: is a call

    async def rebuild(self, answers: list[VerifiedAnswer]) -> None:
        """The live (not retired) answers, by collection; only new questions are embedded."""
        live = [a for a in answers if not a.retired]
        vectors: dict[str, np.ndarray] = {}
        for answer in live:
            norm = normalise(answer.question)
            if norm not in vectors:
                vectors[norm] = self._vectors.get(norm)
                if vectors[norm] is None:
                    vectors[norm] = await self.embed(norm)
        grouped: dict[str, list[_Entry]] = {}
        for answer in live:
            norm = normalise(answer.question)
            entry = _Entry(answer, norm, vectors[norm], tuple(sorted(_DIGITS.findall(norm))))
            grouped.setdefault(answer.collection, []).append(entry)
        self._vectors, self._by_collection = vectors, grouped

    async def match(self, question: str, collections: frozenset[str]) -> VerifiedAnswer | None:
        """``question`` is already redacted. Exact first; then the most similar above the threshold."""
        entries = [e for c in sorted(collections) for e in self._by_collection.get(c, ())]
        if not entries:
            return None
        norm = normalise(question)
        exact = [e for e in entries if e.norm == norm]
        if exact:
            return max(exact, key=lambda e: e.answer.updated_at).answer
        vector = await self.embed(norm)
        digits = tuple(sorted(_DIGITS.findall(norm)))
        scores = np.stack([e.vector for e in entries]) @ vector
        best: _Entry | None = None
        best_score = self.threshold
        for entry, score in zip(entries, scores.tolist(), strict=True):
            if score >= best_score and entry.digits == digits:
                best, best_score = entry, score
        return best.answer if best is not None else None
