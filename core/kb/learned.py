"""The fitted retrieval models: one linear ranker and one logistic "does the knowledge base
answer this?" model, read from ``learned.json`` (written by bench/fit_retrieval.py).

Both replace hand rules (a similarity floor with bands and a background margin, seats, a
title discount, a place penalty, length-dependent weights) with coefficients fitted across
every domain we have and measured leave-one-domain-out (docs/retrieval.md).

The threshold comes from a cost ratio, not from a set: declining an answerable question costs
COST_RATIO times what answering an off-topic one does (a wrong "I don't know" loses the asker;
an off-topic answer shows sources that plainly do not fit). With the model's probability p that
the question is answerable, declining is the cheaper choice when (1 - p) · 1 > p · COST_RATIO,
that is p < 1 / (1 + COST_RATIO); the model is fitted with both classes weighted equally, so p
is calibrated for an even prior.

A missing or corrupt file must not stop the hub: the models fall back to FALLBACK_RANKER (a
fixed fusion) and never decline (answer rather than decline), the warning is logged at load
and /readyz lists it (``fallback_reason``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.kb.features import CANDIDATE_FEATURES, QUESTION_FEATURES

log = logging.getLogger("askhub.index")

PATH = Path(__file__).with_name("learned.json")
VERSION = 1
COST_RATIO = 10.0
# The abstention model's inputs (a subset of features.QUESTION_FEATURES), as fitted. Not the
# question's length: long questions come from the sets without off-topic questions (DRCD, MedQuAD),
# so "long means answerable" would be learned from which sets we have, not from the questions.
ABSTAIN_FEATURES = (
    "best_dense",
    "best_calibrated",
    "best_lexical",
    "top_title",
    "dense_margin",
    "question_cjk",
    "best_other_group",
    "other_group_present",
    "best_translated",
)
# The ranker's inputs (features.CANDIDATE_FEATURES not listed get weight 0), as fitted.
RANK_FEATURES = CANDIDATE_FEATURES
# Without coefficients: lexical share and the rescaled calibrated similarity, equal parts, plus the title.
FALLBACK_RANKER = {"lexical": 0.4, "calibrated_rescaled": 0.5, "title": 0.1}


def threshold(cost_ratio: float) -> float:
    """The probability of "answerable" under which declining costs less than answering."""
    return 1.0 / (1.0 + cost_ratio)


@dataclass(frozen=True)
class Abstention:
    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float

    def probability(self, values: dict[str, float]) -> float:
        """How likely the knowledge base answers the question (for an even prior)."""
        x = (np.array([values[n] for n in self.names]) - self.mean) / self.scale
        return 1.0 / (1.0 + math.exp(-float(x @ self.weights + self.bias)))

    def answers(self, values: dict[str, float]) -> bool:
        return self.probability(values) >= self.threshold


@dataclass(frozen=True)
class Models:
    ranker: np.ndarray  # one weight per features.CANDIDATE_FEATURES
    abstention: Abstention | None  # None: never decline (the safe default)
    no_evidence: float
    embedder: str = ""  # the embedder (name prefix) the coefficients were fitted with
    fallback_reason: str | None = None  # why the shipped coefficients are not in use


def fallback_ranker() -> np.ndarray:
    """FALLBACK_RANKER as weights over features.CANDIDATE_FEATURES."""
    return np.array([FALLBACK_RANKER.get(n, 0.0) for n in CANDIDATE_FEATURES])


def _fallback(reason: str) -> Models:
    log.warning(reason)
    return Models(fallback_ranker(), None, 0.0, "", reason)


def parse(data: object) -> Models:
    """The models a learned.json document holds; ValueError when it is not one."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} coefficients file")
    ranker, abstain = data["ranker"], data["abstain"]
    if list(ranker["features"]) != list(CANDIDATE_FEATURES):
        raise ValueError("the ranker's features are not this version's")
    weights = np.asarray(ranker["weights"], dtype=np.float64)
    names = tuple(abstain["features"])
    if unknown := set(names) - set(QUESTION_FEATURES):
        raise ValueError(f"unknown abstention features {sorted(unknown)}")
    arrays = [np.asarray(abstain[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
    if weights.shape != (len(CANDIDATE_FEATURES),) or any(a.shape != (len(names),) for a in arrays):
        raise ValueError("coefficient lengths do not match their features")
    if not all(np.isfinite(a).all() for a in (weights, *arrays)) or (arrays[1] <= 0).any():
        raise ValueError("coefficients must be finite, scales positive")
    cost = float(abstain["cost_ratio"])
    model = Abstention(names, arrays[0], arrays[1], arrays[2], float(abstain["bias"]), threshold(cost))
    return Models(weights, model, float(data["no_evidence"]["max_similarity"]), str(data["embedder"]))


def load(path: Path | None = None) -> Models:
    """The shipped models (``path``: another file), or the safe default with a loud warning."""
    path = path or PATH
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return _fallback(f"retrieval coefficients missing ({path}): {_DEFAULT}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _fallback(f"retrieval coefficients unreadable ({path}: {exc}): {_DEFAULT}")


_DEFAULT = "ranking with a fixed fusion, never declining offline"


_shared: Models | None = None
_lock = threading.Lock()


def shared() -> Models:
    """The shipped models, read (and warned about) once per process."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = load()
        return _shared
