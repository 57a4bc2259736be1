"""Questions about nothing in particular: the null class of the "I don't know" floor.

Just under the similarity floor sit two kinds of question: an English question about a
Chinese-only document (its best cosine is 0.80-0.85: a language gap, not a topic gap) and
general chit-chat ("how to fix my car's brakes", 0.85 too). A fixed floor cannot tell them
apart; their nearness to general questions can. ``background.txt`` holds 123 questions about
the weather, sports, cooking, films, science, pets, travel, money... in English and zh-TW,
written for this and kept apart from every off-topic set we measure on (below 0.92 cosine to
each in the same language, 0.86 in the other: no paraphrases, no translations). A question
under the floor is answered only when the knowledge base fits it clearly better than any of
these does (retriever.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.kb.embedders import Embedder, embed_query

_LINES = Path(__file__).with_name("background.txt").read_text("utf-8").splitlines()
QUESTIONS = tuple(line.strip() for line in _LINES if line.strip())

_vectors: dict[str, np.ndarray] = {}  # by embedder name: computed once per process


async def vectors(embedder: Embedder) -> np.ndarray:
    """The background questions' vectors: 123 query embeddings (2.4 s with e5), once a process.
    Two first callers at once may both compute them, which costs time, never a wrong answer."""
    found = _vectors.get(embedder.name)
    if found is None:
        found = _vectors[embedder.name] = np.stack([await embed_query(embedder, q) for q in QUESTIONS])
    return found


async def similarity(embedder: Embedder, qvec: np.ndarray) -> float:
    """The question's best cosine to a background question (the vectors are unit length)."""
    return float((await vectors(embedder) @ qvec).max())
