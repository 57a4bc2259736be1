"""Hybrid retrieval: BM25 and dense (FAISS) candidates, fused into one score in [0, 1].

BM25 carries exact terms (product names, 特休, VPN); the dense side adds fuzzy matches
(typos, word forms, character trigrams). The fused score is a weighted sum of scores that
are all about 1 for a full match, so one threshold says "nothing relevant": BM25, dense
similarity, and how much of the question the document's title holds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from core.kb import dense
from core.kb.diskarray import gather
from core.kb.embedders import Embedder, HashEmbedder
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


class Retriever:
    def __init__(self, embedder: Embedder, *, lexical_weight: float) -> None:
        self._embedder = embedder
        self._w = lexical_weight

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
            qvec = (await self._embedder.embed([" ".join([query, *extra])]))[0]
            if context:
                qvec = _blend(qvec, (await self._embedder.embed([context]))[0], CONTEXT_SHARE)
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


def _blend(question: np.ndarray, context: np.ndarray, share: float) -> np.ndarray:
    mixed = question + share * context
    norm = np.linalg.norm(mixed)
    return mixed / norm if norm else question
