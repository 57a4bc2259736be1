"""BM25 over hashed terms, as flat numpy arrays (memory-mapped by the server).

Postings (term -> chunks) carry the BM25 weight precomputed, so scoring a question is one
``np.bincount`` over the postings of its terms: no Python loop over chunks or terms.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from core.kb.diskarray import DiskArray, gather
from core.kb.terms import TermRows

K1 = 1.2
B = 0.75
EXPANSION_WEIGHT = 0.5  # a synonym counts half as much as the question's own word
MIN_QUERY_INFO = 1.5  # the score's bar is at least this many rare terms' worth of idf
POSTINGS_BUDGET = 10_000  # candidate search reads at most this many postings (rarest terms first)
COMMON_SHARE = 0.35  # terms in more than this share of the chunks never pick candidates


@dataclass(frozen=True)
class LexicalIndex:
    vocab: np.ndarray  # sorted uint32 term ids
    idf: np.ndarray  # float32 per vocab entry
    post_offsets: np.ndarray  # int64, len = vocab + 1
    post_docs: np.ndarray | DiskArray  # int32, ascending within each term
    post_weights: np.ndarray | DiskArray  # float16 BM25 weight (idf included): enough to rank
    lengths: np.ndarray  # float32 chunk lengths in terms

    ARRAYS = ("vocab", "idf", "post_offsets", "post_docs", "post_weights", "lengths")

    @property
    def n_docs(self) -> int:
        return len(self.lengths)

    @property
    def max_idf(self) -> float:
        return math.log1p((self.n_docs + 0.5) / 0.5)

    @staticmethod
    def build(rows: TermRows) -> LexicalIndex:
        n = rows.size
        doc_ids = rows.row_ids().astype(np.int32)
        lengths = np.bincount(doc_ids, weights=rows.counts, minlength=n).astype(np.float32)
        avgdl = float(lengths.mean()) if n else 1.0
        order = np.argsort(rows.hashes, kind="stable")  # stable: chunks stay ascending per term
        docs = doc_ids[order]
        tf = rows.counts[order].astype(np.float32)
        vocab, starts, df = np.unique(rows.hashes[order], return_index=True, return_counts=True)
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        weights = np.repeat(idf, df) * _saturation(tf, lengths[docs], avgdl)
        return LexicalIndex(
            vocab=vocab,
            idf=idf,
            post_offsets=np.append(starts, len(docs)).astype(np.int64),
            post_docs=docs,
            post_weights=weights.astype(np.float16),
            lengths=lengths,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> LexicalIndex:
        return LexicalIndex(**arrays)

    def query(self, terms: Counter[int], expansion: Counter[int] | None = None) -> LexicalQuery:
        """A question's terms looked up once, for candidate search and exact scoring.

        Scores are BM25 divided by the best score the question could reach, so they say
        how much of the question's information matched, between 0 and 1 for any question:
        usable as a relevance threshold. Synonyms add evidence but do not raise the bar.
        """
        weights = terms.copy()
        for term, weight in (expansion or {}).items():
            weights[term] += EXPANSION_WEIGHT * weight
        keys = np.fromiter(weights.keys(), dtype=np.uint32, count=len(weights))
        qtf = np.fromiter(weights.values(), dtype=np.float32, count=len(weights))
        own = np.fromiter((terms.get(k, 0) for k in weights), dtype=np.float32, count=len(weights))
        if len(self.vocab):
            pos = np.minimum(np.searchsorted(self.vocab, keys), len(self.vocab) - 1)
            found = self.vocab[pos] == keys
        else:
            pos, found = np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        term_idf = np.where(found, self.idf[pos] if len(self.vocab) else 0.0, self.max_idf)
        best = max(float((term_idf * own).sum()), MIN_QUERY_INFO * self.max_idf) * (K1 + 1)
        order = np.argsort(keys[found])
        return LexicalQuery(
            self,
            keys=keys[found][order],
            idf=term_idf[found][order],
            factors=qtf[found][order],
            post=pos[found][order],
            best=best,
        )


@dataclass
class LexicalQuery:
    index: LexicalIndex
    keys: np.ndarray  # the question's terms found in the index, sorted
    idf: np.ndarray
    factors: np.ndarray  # the question's weight of each term
    post: np.ndarray  # vocab position of each term
    best: float
    _scores: np.ndarray | None = None

    def candidates(self, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Up to k chunks with the highest BM25, and the scores of every chunk (``score``);
        with ``allowed`` (a per-chunk mask) only allowed chunks score, so k of them come back.

        Terms in over a third of the chunks, and the commonest past the postings budget, are
        left out: they carry little idf but most of the postings (a common character sits in
        tens of thousands of chunks of a big index), so the scores are BM25 over the terms
        that tell chunks apart.
        """
        index = self.index
        n = index.n_docs
        starts = index.post_offsets[self.post]
        lengths = index.post_offsets[self.post + 1] - starts
        usable = np.flatnonzero(lengths <= COMMON_SHARE * n) if n > 50 else np.arange(len(lengths))
        if not len(usable):
            return np.zeros(0, np.int64)
        usable = usable[np.argsort(lengths[usable], kind="stable")]
        usable = usable[np.cumsum(lengths[usable]) <= max(POSTINGS_BUDGET, int(lengths[usable[0]]))]
        starts, lengths = starts[usable], lengths[usable]
        weights = gather(index.post_weights, starts, lengths).astype(np.float32) * np.repeat(
            self.factors[usable], lengths
        )
        raw = np.bincount(gather(index.post_docs, starts, lengths), weights=weights, minlength=n)
        if allowed is not None:
            raw *= allowed
        self._scores = raw / self.best
        top = np.flatnonzero(raw) if n <= k else np.argpartition(-raw, k)[:k]
        return top[raw[top] > 0]

    def score(self, docs: np.ndarray) -> np.ndarray:
        """The scores of the given chunks (``candidates`` computed them for every chunk)."""
        return self._scores[docs] if self._scores is not None else np.zeros(len(docs))


def _saturation(tf: np.ndarray, length: np.ndarray, avgdl: float) -> np.ndarray:
    """BM25's term-frequency part: grows with tf, saturates at K1 + 1, shorter chunks win."""
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / max(avgdl, 1e-9)))
