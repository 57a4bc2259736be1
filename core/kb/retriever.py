"""Hybrid retrieval: BM25 and dense (FAISS) candidates, fused into one score in [0, 1].

BM25 carries exact terms (product names, 特休, VPN); the dense side adds meaning (a
semantic model: paraphrases, other languages) or fuzzy matches (the hash embedder: typos,
word forms, character trigrams). With a semantic model:

- the candidates are BM25's best, the model's best and the model's best within each script
  group, so the right document in another language is there to be ranked;
- dense similarities are calibrated per script group (Chinese vs Latin documents): a
  question's average similarity to each group (its inner product with the group's mean
  vector) is subtracted, so an English question's best Chinese document competes with the
  English ones instead of losing to every one of them;
- the calibrated similarities are rescaled over the candidates (best 1, worst 0) and added
  to BM25's share of the question matched, weighted by the question's length (question_weight),
  then the title share: each side ranks on its own scale, so neither drowns the other (a raw
  e5 cosine moves within 0.75-0.95 only); for a question under SEAT_TERMS terms BM25's share
  counts only what the passage matches beyond its document's title, which the title share
  already counts;
- a document that names other countries than the question does (places.py: "the Taiwan office"
  asked, the Singapore and Tokyo version found) keeps PLACE_PENALTY of its score: near-identical
  policies per office are told apart by the office, in any language;
- top_k are documents (one chunk each), and a side that is sure keeps its document among them
  (seats); a how-to question's procedure leads its document;
- a question whose best similarity (plus a little lexical evidence) stays under the
  embedder's calibrated floor matches nothing: "I don't know" without a model call; within
  FLOOR_BAND under it, only a question that fits the knowledge base better than it fits general
  questions (background.py) by the embedder's margin is answered — by any margin when its best
  match is in the other language: the topic beat the language gap, which chit-chat never does.

The hash embedder keeps its plain weighted sum of absolute scores, with ``min_score`` (and the
places rule).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.config import RetrievalSettings
from core.kb import background, dense, places
from core.kb.diskarray import gather
from core.kb.embedders import Embedder, HashEmbedder, embed_query
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
SEAT_TERMS = 15  # a question this long whose BM25 best document clearly leads keeps it in top_k
LEXICAL_LEAD = 0.1
PROCEDURE_REACH = 0.25  # how far below its document's best chunk a procedure may be and still lead it
PLACE_PENALTY = 0.5  # the share of its score a document naming only other countries than the question keeps


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    lexical: float
    dense: float


HASH_LEXICAL_WEIGHT = 0.8
SEMANTIC_LEXICAL_WEIGHT = 0.3  # for a short question; each term past FREE_TERMS adds WEIGHT_PER_TERM
FREE_TERMS = 5
WEIGHT_PER_TERM = 0.01
MAX_LEXICAL_WEIGHT = 0.9
LEXICAL_EVIDENCE = 0.1  # how much BM25's share adds to the best similarity the floor is compared with
FLOOR_BAND = 0.05  # how far under the floor a question may still be answered, if the background allows
# The background margin for a question whose best match is in the other script group: none of the
# 100 off-topic questions we measure has its best match there, a cross-language question often does.
OTHER_LANGUAGE_MARGIN = 0.0
# "No evidence at all" (search(abstain=False), with a chat model that decides for itself): no
# lexical match and a best similarity under what off-topic questions reach anyway. e5, measured
# with bench/model_decides.py: the 100 questions of data/eval/offtopic*.jsonl against the sample
# KB — 20 have no lexical match, their best cosines 0.736-0.831; every answerable question of the
# sample, crosslang, handbook and policies sets reaches 0.804 or more, but an English question
# about a small Chinese KB sits lower (0.782, "What's the hotel cap in Taipei?" against five
# zh-TW documents). 0.77 is under every answerable question measured and over the lowest
# off-topic ones (6 of the 20): only those are declined without a model call.
NO_EVIDENCE_SIMILARITY = 0.77
# The hash (or an OpenAI) embedder's cosines sit on another scale: the same 20 off-topic
# questions reach 0.107-0.204 against the sample KB with character trigrams.
FUZZY_NO_EVIDENCE_SIMILARITY = 0.2


class Retriever:
    def __init__(
        self, embedder: Embedder, *, lexical_weight: float | None = None, min_similarity: float | None = None
    ) -> None:
        """``lexical_weight`` and ``min_similarity`` default to what was tuned for the embedder."""
        self._embedder = embedder
        self._semantic = getattr(embedder, "semantic", False)
        default_w = SEMANTIC_LEXICAL_WEIGHT if self._semantic else HASH_LEXICAL_WEIGHT
        self._w = default_w if lexical_weight is None else lexical_weight
        self._fixed = lexical_weight is not None  # a configured weight is used as is
        self._floor = getattr(embedder, "similarity_floor", None) if min_similarity is None else min_similarity
        # The background margin was calibrated with the embedder's own floor; a configured floor is used as is.
        self._margin = getattr(embedder, "background_margin", None) if min_similarity is None else None
        self._no_evidence = NO_EVIDENCE_SIMILARITY if self._semantic else FUZZY_NO_EVIDENCE_SIMILARITY

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
        abstain: bool = True,
    ) -> list[Hit]:
        """The best chunks, at most PER_DOCUMENT (hash: HASH_PER_DOCUMENT) from one document, best first. ``context``
        (the conversation's earlier question) adds its words at half weight, so a follow-up
        like "那請假呢?" or "what's the deadline?" finds what the conversation is about.

        ``collections`` (None: all) limits the candidates inside both searches, so an asker
        gets its top_k from its own collections and never sees another's chunk.

        ``abstain`` (offline): the retriever decides "I don't know" (the floor). False (a chat
        model answers and decides for itself): the best candidates unless there is no evidence."""
        found = await self.signals(index, query, context=context, collections=collections)
        if found is None:
            return []
        if not abstain:
            if self.no_evidence(found):
                return []
        elif self._semantic and self._floor is not None and self._declines(found):
            return []
        if self._semantic:
            fused = semantic_fusion(found, self._w if self._fixed else question_weight(found.terms))
        else:
            fused = (1 - TITLE_WEIGHT) * (self._w * found.lexical + (1 - self._w) * found.dense)
            fused = _elsewhere_penalised(found, fused + TITLE_WEIGHT * found.title)
        if self._semantic:
            return select(index, query, found, fused, top_k, seats(found))
        return select(index, query, found, fused, top_k, per_document=HASH_PER_DOCUMENT)

    async def warm(self) -> None:
        """Embed the background questions now (at start-up), not on the first question."""
        if self._margin is not None:
            await background.vectors(self._embedder)

    def no_evidence(self, found: Signals) -> bool:
        """True: nothing lexical matches and the meaning is no nearer than off-topic questions get."""
        return float(found.lexical.max()) == 0.0 and float(found.dense.max()) < self._no_evidence

    def _declines(self, found: Signals) -> bool:
        """True: the question matches nothing in the knowledge base (see the module docstring)."""
        assert self._floor is not None
        best = float(found.dense.max() + LEXICAL_EVIDENCE * found.lexical.max())
        if best >= self._floor:
            return False
        if self._margin is None or best < self._floor - FLOOR_BAND:
            return True
        other_language = int(found.groups[np.argmax(found.dense)]) != found.query_group
        return found.background >= best - (OTHER_LANGUAGE_MARGIN if other_language else self._margin)

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
        ids = np.union1d(np.concatenate(dense_ids), lexical.candidates(CANDIDATES, subset.mask if subset else None))
        similarities = np.clip(dense.similarities(index.dense, qvec, ids), 0.0, 1.0)
        documents = index.documents_of(ids)
        return Signals(
            ids=ids,
            lexical=np.clip(lexical.score(ids), 0.0, 1.0),
            dense=similarities,
            calibrated=_calibrated(index, qvec, ids, similarities) if self._semantic else similarities,
            title=_title_match(index, lexical, ids),
            terms=len(terms),
            groups=index.groups[ids],
            documents=documents,
            elsewhere=_elsewhere(index, documents, places.named(query)),
            background=await background.similarity(self._embedder, qvec) if self._margin is not None else 0.0,
            query_group=script_group(query),
        )


@dataclass(frozen=True)
class Signals:
    """One question's candidate chunks and their scores, aligned."""

    ids: np.ndarray
    lexical: np.ndarray  # BM25's share of the question matched, in [0, 1]
    dense: np.ndarray  # cosine similarity
    calibrated: np.ndarray  # cosine less the question's average similarity to the chunk's script group
    title: np.ndarray  # share of the question its document's title holds
    terms: int  # the question's distinct terms (words, CJK bigrams)
    groups: np.ndarray  # each chunk's script group (text.script_group of its document)
    documents: np.ndarray  # each chunk's document (its position in the index's list)
    elsewhere: np.ndarray | None = None  # the chunk's document names countries, none of those the question names
    background: float = 0.0  # the question's best cosine to a general question (background.py; 0: not asked)
    query_group: int = 0  # the question's own script group


def question_weight(terms: int) -> float:
    """The lexical side's weight for a question of that many distinct terms. A long question
    (a reading-comprehension one, a pasted error message) carries many of its answer's exact
    words, and BM25 ranks well on them; a short or paraphrased one is better read by meaning.
    Chosen on every set at once (bench/fusion.py: sample, crosslang, policies, handbook, DRCD,
    MedQuAD): a fixed weight traded DRCD against the policy sets."""
    return min(MAX_LEXICAL_WEIGHT, SEMANTIC_LEXICAL_WEIGHT + WEIGHT_PER_TERM * max(0, terms - FREE_TERMS))


def semantic_fusion(found: Signals, lexical_weight: float) -> np.ndarray:
    """Lexical and calibrated dense evidence on one scale, then the title share and the places.

    For a question of fewer than SEAT_TERMS terms BM25's share is what the passage matches
    beyond its document's title: the title share counts those words already, and counted twice
    they let a sibling document on the same subject win on an incidental word (MedQuAD's five
    documents per disease: "genetic" in a list of resources outranked the one about the
    mutations; recall@3 0.943 -> 0.957). A long question carries its answer's exact words and
    its BM25 share is trusted whole (DRCD: 0.987 with the discount, 0.990 without; every other
    set equal either way, bench/fusion.py)."""
    lexical = found.lexical if found.terms >= SEAT_TERMS else np.clip(found.lexical - found.title, 0.0, 1.0)
    fused = lexical_weight * lexical + (1 - lexical_weight) * _rescaled(found.calibrated)
    return _elsewhere_penalised(found, (1 - TITLE_WEIGHT) * fused + TITLE_WEIGHT * found.title)


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
    seats: Sequence[int] = (),
    *,
    per_document: int = PER_DOCUMENT,
) -> list[Hit]:
    """The top_k chunks by fused score, at most ``per_document`` from one document. ``seats``:
    the documents (positions in the index's list) that keep a place among them, after the first."""
    ids = found.ids
    procedures = np.zeros(len(ids), dtype=bool)
    if asks_how_to(query):
        fused, procedures = _procedures_lead(index, ids, fused)
    order = np.lexsort((~procedures, -fused))
    picked: list[int] = []  # positions in ``order``
    per_doc: Counter[int] = Counter()
    first_of: dict[int, int] = {}
    for n, j in enumerate(order):
        doc = int(found.documents[j])
        first_of.setdefault(doc, n)
        if per_doc[doc] < per_document and len(picked) < top_k:
            per_doc[doc] += 1
            picked.append(n)
    for doc in seats:
        if doc in first_of and not per_doc[doc]:
            # The seat goes to the last pick that is neither the best one nor another seat.
            for k in range(len(picked) - 1, 0, -1):
                held = int(found.documents[order[picked[k]]])
                if held not in seats:
                    per_doc[held] -= 1
                    per_doc[doc] += 1
                    picked[k] = first_of[doc]
                    break
    hits: list[Hit] = []
    for n in sorted(picked):
        j = order[n]
        hits.append(Hit(index.chunk(int(ids[j])), float(fused[j]), float(found.lexical[j]), float(found.dense[j])))
    return hits


def seats(found: Signals) -> list[int]:
    """The documents each side is sure of, kept among the top_k whatever the fusion says: the
    model's best (calibrated) document, and BM25's best when the question is long and that
    document leads the next by LEXICAL_LEAD. A sure side's first answer then never drops out
    (DRCD's long questions: 0.980 without the lexical seat, 0.990 with it; bench/fusion.py)."""
    chosen = [int(found.documents[int(np.argmax(found.calibrated))])]
    if found.terms >= SEAT_TERMS and found.lexical.max() > 0:
        best = np.zeros(int(found.documents.max()) + 1)
        np.maximum.at(best, found.documents, found.lexical)
        top, second = np.sort(best)[::-1][:2] if len(best) > 1 else (best.max(), 0.0)
        if top - second >= LEXICAL_LEAD * top:
            chosen.append(int(np.argmax(best)))
    return chosen


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


def _rescaled(scores: np.ndarray) -> np.ndarray:
    """The candidates' scores mapped onto [0, 1], best 1 (all equal: all 1)."""
    low, high = float(scores.min()), float(scores.max())
    return (scores - low) / (high - low) if high - low > 1e-9 else np.ones_like(scores)


def _blend(question: np.ndarray, context: np.ndarray, share: float) -> np.ndarray:
    mixed = question + share * context
    norm = np.linalg.norm(mixed)
    return mixed / norm if norm else question
