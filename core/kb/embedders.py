"""Text embedders: the offline semantic model (default, e5.py), the offline hash embedder
and the OpenAI embeddings endpoint.

Every embedder returns L2-normalised float32 rows, so inner product is cosine similarity
and the FAISS index can be an inner-product index.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Protocol

import numpy as np

from core import privacy
from core.kb.terms import TermRows, analyse
from core.metrics import EMBEDDER_FALLBACK, EMBEDDINGS_WITHHELD
from core.pii import contains_pii

log = logging.getLogger("askhub.index")


class EmbedderError(Exception):
    """The embedder could not embed (for example its upstream is down)."""


class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    async def embed(self, texts: list[str]) -> np.ndarray: ...


async def embed_query(embedder: Embedder, text: str) -> np.ndarray:
    """A question's vector: models that embed questions differently (e5's "query: ") do."""
    own = getattr(embedder, "embed_query", None)
    return await own(text) if own is not None else (await embedder.embed([text]))[0]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


TRIGRAM_WEIGHT = 0.5  # character trigrams are fuzzy evidence: they weigh half a term


class HashEmbedder:
    """Deterministic feature hashing of words, CJK n-grams and character trigrams.

    No model, no network: the same text gives the same vector on every machine, which is
    what lets a newcomer's first start build a usable index offline. A sign bit per feature
    makes collisions cancel out on average instead of piling up.
    """

    def __init__(self, dim: int = 512) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hash-v1-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        return self.vectors(*analyse(texts, trigrams=True))

    def vector(self, terms: Counter[int], trigrams: Counter[int]) -> np.ndarray:
        """One vector from a question's term counts (see terms.count_terms)."""
        dim = self._dim
        cells: list[int] = []
        weights: list[float] = []
        for counts, scale in ((terms, 1.0), (trigrams, TRIGRAM_WEIGHT)):
            for term, count in counts.items():
                cells.append(term % dim)
                weights.append((scale if term & 0x80000000 else -scale) * (1.0 + math.log(count)))
        vec = np.bincount(np.asarray(cells, dtype=np.int64), weights=np.asarray(weights), minlength=dim)
        return _normalise(vec.reshape(1, dim))[0]

    def vectors(self, terms: TermRows, trigrams: TermRows | None) -> np.ndarray:
        """Vectors from analysed texts (ingest analyses once for BM25 and for this)."""
        dim = self._dim
        cells: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for rows, scale in ((terms, 1.0), (trigrams, TRIGRAM_WEIGHT)):
            if rows is None:
                continue
            sign = np.where(rows.hashes & np.uint32(0x80000000), 1.0, -1.0)
            cells.append(rows.row_ids() * dim + (rows.hashes % dim).astype(np.int64))
            weights.append(sign * scale * (1.0 + np.log(rows.counts)))
        flat = np.bincount(np.concatenate(cells), weights=np.concatenate(weights), minlength=terms.size * dim)
        return _normalise(flat.reshape(terms.size, dim))

    async def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_sync(texts)


class OpenAIEmbedder:
    """The OpenAI (or compatible) embeddings endpoint, called in batches.

    A cloud provider never sees a question holding personal data (core/privacy.py): for such a
    question — its decision says so, or the text itself holds some (a rewrite, an earlier turn) —
    ``embed_query`` sends nothing and returns the zero vector, which matches no chunk (every
    similarity 0): the search runs without its dense side. Vectors of a local embedder would live
    in another space than the index's, so "not embedded" is the only honest local answer here.
    ``embed`` (documents at ingest, fixed texts) is not a question and is not held back.
    """

    def __init__(self, model: str, client: object, batch_size: int = 256) -> None:
        self._model = model
        self._client = client
        self._batch = batch_size
        self._dim: int | None = None

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise EmbedderError("dimension unknown until the first embedding call")
        return self._dim

    def learn_dim(self, dim: int) -> None:
        """The loaded index's dimension: a withheld question's zero vector needs it before any call."""
        self._dim = self._dim or dim

    async def embed_query(self, text: str) -> np.ndarray:
        if privacy.personal() or await contains_pii(text):
            EMBEDDINGS_WITHHELD.inc()
            if self._dim is None:
                raise EmbedderError("dimension unknown until the first embedding call")
            return np.zeros(self._dim, np.float32)
        return (await self.embed([text]))[0]

    async def embed(self, texts: list[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            batch = texts[start : start + self._batch]
            try:
                response = await self._client.embeddings.create(model=self._model, input=batch)  # type: ignore[attr-defined]
            except openai.OpenAIError as exc:
                raise EmbedderError(f"embeddings call failed: {type(exc).__name__}") from exc
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        matrix = np.asarray(rows, dtype=np.float32)
        if len(texts) and matrix.ndim == 2:
            self._dim = matrix.shape[1]
        return _normalise(matrix) if len(texts) else np.zeros((0, self._dim or 0), np.float32)


class FallbackHashEmbedder(HashEmbedder):
    """The hash embedder standing in for a semantic model that could not load: it works,
    retrieves worse, and says so (``fallback_reason`` reaches the log, /readyz and /metrics)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.fallback_reason = reason


def make_embedder(spec: str, *, api_key: str | None = None, base_url: str | None = None) -> Embedder:
    if spec == "hash":
        return HashEmbedder()
    if spec == "e5":
        from core.kb import e5

        try:
            return e5.shared()
        except e5.E5Unavailable as exc:
            reason = f"the semantic embedder (e5) cannot load: {exc}; using the hash embedder instead"
            log.warning(reason)
            EMBEDDER_FALLBACK.set(1)
            return FallbackHashEmbedder(reason)
    import openai

    model = spec.removeprefix("openai:")
    client = openai.AsyncOpenAI(api_key=api_key or "unset", base_url=base_url, max_retries=2)
    return OpenAIEmbedder(model, client)
