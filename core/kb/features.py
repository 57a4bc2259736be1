"""The numbers the learned ranker and the abstention model read, from one question's signals.

Both models are linear (learned.py holds their coefficients, bench/fit_retrieval.py fits
them): the ranker scores every candidate chunk from ``candidate_features``, the abstention
model says how likely the knowledge base answers the question from ``question_features``.
The same functions feed the fit and the server, so what was measured is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    translated: np.ndarray | None = None  # BM25's share of the question's dictionary translations (bilingual.py)
    query_group: int = 0  # the question's own script group


LONG_TERMS = 20  # a question of this many distinct terms past FREE_TERMS counts as fully "long"
FREE_TERMS = 5

CANDIDATE_FEATURES = (
    "lexical",  # BM25's share of the question matched
    "lexical_beyond_title",  # what the passage matches beyond its document's title
    "lexical_top",  # lexical over the best candidate's lexical (1 for the best)
    "calibrated_rescaled",  # calibrated similarity over the candidates, best 1, worst 0
    "title",  # share of the question its document's title holds
    "other_group",  # 1 when the chunk's script group is not the question's
    "lexical_long",  # lexical times how long the question is (0..1)
    "calibrated_long",  # calibrated_rescaled times how long the question is
    "elsewhere",  # 1 when the document names countries and none the question names (places.py)
    "translated",  # what the question's words in the other language (bilingual.py) match beyond its own words
    "lexical_rank",  # 1 / (1 + rank by lexical share): scale-free, as reciprocal rank fusion
    "calibrated_rank",  # 1 / (1 + rank by calibrated similarity)
    "translated_rank",  # 1 / (1 + rank by the translations' share; 0 with no translation match)
)

QUESTION_FEATURES = (
    "best_dense",  # the best raw cosine among the candidates
    "best_calibrated",  # the best calibrated similarity
    "best_lexical",  # the best BM25 share
    "top_title",  # the title share of the best calibrated candidate
    "dense_margin",  # best cosine less the best cosine of another document
    "log_terms",  # log(1 + distinct terms)
    "question_cjk",  # 1 for a question mostly in CJK
    "best_other_group",  # 1 when the best cosine is in the other script group
    "other_group_present",  # 1 when some candidate is in the other script group
    "best_translated",  # the best BM25 share of the question's dictionary translations
)


def _rescaled(x: np.ndarray) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    return (x - low) / (high - low) if high - low > 1e-9 else np.ones_like(x)


def length_share(terms: int) -> float:
    """0 for a short question, 1 for one of FREE_TERMS + LONG_TERMS distinct terms or more."""
    return min(1.0, max(0, terms - FREE_TERMS) / LONG_TERMS)


def _reciprocal_rank(x: np.ndarray) -> np.ndarray:
    """1 / (1 + rank), rank 0 for the best; 0 where the score is 0 (no evidence, no rank)."""
    ranks = np.empty(len(x))
    ranks[np.argsort(-x, kind="stable")] = np.arange(len(x))
    return np.where(x > 0, 1.0 / (1.0 + ranks), 0.0)


def _translated(found: Signals) -> np.ndarray:
    t = getattr(found, "translated", None)  # signals pickled before the dictionary lack it
    return np.zeros(len(found.ids)) if t is None else t.astype(np.float64)


def candidate_features(found: Signals) -> np.ndarray:
    """(candidates, len(CANDIDATE_FEATURES)) in that order."""
    lexical = found.lexical.astype(np.float64)
    calibrated = _rescaled(found.calibrated.astype(np.float64))
    long = length_share(found.terms)
    best_lexical = float(lexical.max())
    # A translation counts only for what the question's own words did not already match: a
    # Chinese page quoting an English title ("〈Travel Expense Claims〉") matches both ways,
    # and counting the same evidence twice let it outrank the English page itself.
    beyond = np.clip(_translated(found) - lexical, 0.0, 1.0)
    columns = (
        lexical,
        np.clip(lexical - found.title, 0.0, 1.0),
        lexical / best_lexical if best_lexical > 0 else np.zeros_like(lexical),
        calibrated,
        found.title.astype(np.float64),
        (found.groups != found.query_group).astype(np.float64),
        lexical * long,
        calibrated * long,
        np.zeros(len(lexical)) if found.elsewhere is None else found.elsewhere.astype(np.float64),
        beyond,
        _reciprocal_rank(lexical),
        _reciprocal_rank(found.calibrated),
        _reciprocal_rank(beyond),
    )
    return np.column_stack(columns)


def question_features(found: Signals) -> dict[str, float]:
    """Every one of QUESTION_FEATURES by name (a model reads the ones it was fitted with)."""
    best = int(np.argmax(found.dense))
    best_doc = found.documents[best]
    others = found.dense[found.documents != best_doc]
    top_calibrated = int(np.argmax(found.calibrated))
    values = (
        float(found.dense[best]),
        float(found.calibrated.max()),
        float(found.lexical.max()),
        float(found.title[top_calibrated]),
        float(found.dense[best] - others.max()) if len(others) else 0.0,
        float(np.log1p(found.terms)),
        float(found.query_group == 1),
        float(int(found.groups[best]) != found.query_group),
        float((found.groups != found.query_group).any()),
        float(_translated(found).max()),
    )
    return dict(zip(QUESTION_FEATURES, values, strict=True))
