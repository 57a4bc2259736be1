"""Hybrid retrieval: BM25 and dense (FAISS) candidates, fused into one score in [0, 1].

BM25 carries exact terms (product names, 特休, VPN); the dense side adds meaning (a
semantic model: paraphrases, other languages) or fuzzy matches (the hash embedder: typos,
word forms, character trigrams). With a semantic model:

- dense similarities are calibrated per script group (Chinese vs Latin documents): a
  question's average similarity to each group (its inner product with the group's mean
  vector) is subtracted, so an English question's best Chinese document competes with the
  English ones instead of losing to every one of them;
- the calibrated similarities are rescaled over the candidates (best 1, worst 0) and added
  to BM25's share of the question matched, then the title share: each side ranks on its
  own scale, so neither drowns the other (a raw e5 cosine moves within 0.75-0.95 only);
- a question whose best similarity (plus a little lexical evidence) stays under the
  embedder's calibrated floor matches nothing: "I don't know" without a model call.

The hash embedder keeps its plain weighted sum of absolute scores, with ``min_score``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from core.config import RetrievalSettings
from core.kb import dense
from core.kb.diskarray import gather
from core.kb.embedders import Embedder, HashEmbedder, embed_query
from core.kb.lexical import EXPANSION_WEIGHT, K1, LexicalQuery
from core.kb.store import Chunk, KnowledgeIndex
from core.kb.terms import count_terms

CANDIDATES = 24
CONTEXT_SHARE = 0.4  # how much an earlier question of the conversation may weigh, at most
PER_DOCUMENT = 2
TITLE_WEIGHT = 0.15  # share of the score that says "the question names this document's subject"


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    lexical: float
    dense: float


HASH_LEXICAL_WEIGHT = 0.8
SEMANTIC_LEXICAL_WEIGHT = 0.5
LEXICAL_EVIDENCE = 0.1  # how much BM25's share adds to the best similarity the floor is compared with


class Retriever:
    def __init__(
        self, embedder: Embedder, *, lexical_weight: float | None = None, min_similarity: float | None = None
    ) -> None:
        """``lexical_weight`` and ``min_similarity`` default to what was tuned for the embedder."""
        self._embedder = embedder
        self._semantic = getattr(embedder, "semantic", False)
        default_w = SEMANTIC_LEXICAL_WEIGHT if self._semantic else HASH_LEXICAL_WEIGHT
        self._w = default_w if lexical_weight is None else lexical_weight
        self._floor = getattr(embedder, "similarity_floor", None) if min_similarity is None else min_similarity

    @classmethod
    def from_settings(cls, embedder: Embedder, settings: RetrievalSettings) -> Retriever:
        return cls(embedder, lexical_weight=settings.lexical_weight, min_similarity=settings.min_similarity)

    @property
    def lexical_weight(self) -> float:
        return self._w

    async def search(
        self,
        index: KnowledgeIndex,
        query: str,
        top_k: int,
        *,
        context: str = "",
        collections: frozenset[str] | None = None,
    ) -> list[Hit]:
        """The best chunks, at most PER_DOCUMENT from one document, best first. ``context``
        (the conversation's earlier question) adds its words at half weight, so a follow-up
        like "那請假呢?" or "what's the deadline?" finds what the conversation is about.

        ``collections`` (None: all) limits the candidates inside both searches, so an asker
        gets its top_k from its own collections and never sees another's chunk."""
        subset = index.subset(collections)
        if index.size == 0 or not query.strip() or (subset is not None and subset.share == 0.0):
            return []
        terms, trigrams = count_terms(query, trigrams=True)
        extra = index.synonyms.expand(query)
        expansion, extra_trigrams = count_terms(" ".join(extra), trigrams=True) if extra else (Counter(), Counter())
        background, background_trigrams = count_terms(context, trigrams=True) if context else (Counter(), Counter())
        if isinstance(self._embedder, HashEmbedder):
            # The hash embedder reads the very term ids the lexical side just counted.
            qvec = self._embedder.vector(terms + expansion, trigrams + extra_trigrams)
            if background:
                qvec = _blend(qvec, self._embedder.vector(background, background_trigrams), CONTEXT_SHARE)
        else:
            qvec = await embed_query(self._embedder, " ".join([query, *extra]))
            if context:
                qvec = _blend(qvec, await embed_query(self._embedder, context), CONTEXT_SHARE)
        # The earlier question may add at most CONTEXT_SHARE of the question's own weight:
        # it disambiguates a follow-up ("那請假呢?") without taking its topic over.
        scale = CONTEXT_SHARE * sum(terms.values()) / max(sum(background.values()), 1)
        for term, count in background.items():
            expansion[term] += count * min(1.0, scale) / EXPANSION_WEIGHT
        lexical = index.lexical.query(terms, expansion)
        dense_ids, _ = dense.search(index.dense, qvec, CANDIDATES, subset)
        ids = np.union1d(dense_ids, lexical.candidates(CANDIDATES, subset.mask if subset else None))
        dense_scores = np.clip(dense.similarities(index.dense, qvec, ids), 0.0, 1.0)
        lex_scores = np.clip(lexical.score(ids), 0.0, 1.0)
        if self._semantic:
            if self._floor is not None and dense_scores.max() + LEXICAL_EVIDENCE * lex_scores.max() < self._floor:
                return []
            fused = self._w * lex_scores + (1 - self._w) * _rescaled(_calibrated(index, qvec, ids, dense_scores))
        else:
            fused = self._w * lex_scores + (1 - self._w) * dense_scores
        fused = (1 - TITLE_WEIGHT) * fused + TITLE_WEIGHT * _title_match(index, lexical, ids)
        hits: list[Hit] = []
        per_doc: dict[tuple[str, str], int] = {}
        for j in np.argsort(-fused, kind="stable"):
            chunk = index.chunk(int(ids[j]))
            doc = (chunk.collection, chunk.doc_id)
            if per_doc.get(doc, 0) >= PER_DOCUMENT:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
            hits.append(Hit(chunk, float(fused[j]), float(lex_scores[j]), float(dense_scores[j])))
            if len(hits) == top_k:
                break
        return hits


def _title_match(index: KnowledgeIndex, lexical: LexicalQuery, ids: np.ndarray) -> np.ndarray:
    """How much of the question's information each chunk's document title holds, in [0, 1].

    A short chunk that mentions the question's words in passing ("as described in the Travel
    Expense Claims guide") can outscore the document those words name; the title says which
    document is about them."""
    if not len(lexical.keys):
        return np.zeros(len(ids))
    docs, owner = np.unique(index.documents_of(ids), return_inverse=True)
    starts = index.titles.offsets[docs]
    lengths = index.titles.offsets[docs + 1] - starts
    terms = gather(index.titles.terms, starts, lengths)
    pos = np.minimum(np.searchsorted(lexical.keys, terms), len(lexical.keys) - 1)
    weights = np.where(lexical.keys[pos] == terms, (lexical.idf * lexical.factors)[pos], 0.0)
    held = np.bincount(np.repeat(np.arange(len(docs)), lengths), weights=weights, minlength=len(docs))
    total = lexical.best / (K1 + 1)  # the question's whole idf, words the index lacks included
    return np.minimum(held / total, 1.0)[owner]


def _calibrated(index: KnowledgeIndex, qvec: np.ndarray, ids: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Similarities less the question's average similarity to each chunk's script group."""
    if not index.centroids.size:
        return similarities
    return similarities - (index.centroids @ qvec)[index.groups[ids]]


def _rescaled(scores: np.ndarray) -> np.ndarray:
    """The candidates' scores mapped onto [0, 1], best 1 (all equal: all 1)."""
    low, high = float(scores.min()), float(scores.max())
    return (scores - low) / (high - low) if high - low > 1e-9 else np.ones_like(scores)


def _blend(question: np.ndarray, context: np.ndarray, share: float) -> np.ndarray:
    mixed = question + share * context
    norm = np.linalg.norm(mixed)
    return mixed / norm if norm else question
