"""The answer cache: one for every client, tenant and platform that reads the same collections.

Exact entries are keyed by the normalised question, the index version and the answer's scope —
the collections the asker may read and every setting that changes an answer (route, top_k,
temperature) — never by platform, so a question answered for the portal is a hit for Slack,
and never across a wall between collections. The optional semantic cache is scoped to a
tenant and to that same answer scope, and is deliberately strict: besides a very
high embedding similarity it wants the same numbers and nearly the same words, because
"sick leave" and "annual leave" look alike to an embedding and must not share an answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass

import numpy as np
import orjson

from core.config import CacheSettings
from core.kb.embedders import HashEmbedder
from core.kb.text import lexical_terms
from core.metrics import BACKEND_ERRORS, CACHE
from core.state import BackendUnavailable, StateBackend

_PUNCT_END = re.compile(r"[\s?？!！。.,，、~～]+$")
_DIGITS = re.compile(r"\d+")
SEMANTIC_REFRESH_SEC = 2.0
MIN_WORD_OVERLAP = 0.8


def normalise(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).lower()
    return _PUNCT_END.sub("", " ".join(text.split()))


@dataclass(frozen=True, slots=True)
class _Entry:
    vector: np.ndarray
    key: str
    words: frozenset[str]
    digits: list[str]


class AnswerCache:
    def __init__(self, settings: CacheSettings, backend: StateBackend) -> None:
        self._settings = settings
        self._backend = backend
        self._embedder = HashEmbedder()
        self._semantic: dict[str, tuple[float, list[_Entry]]] = {}

    @staticmethod
    def scope(collections: frozenset[str], route: str, top_k: int, temperature: float, verified: str = "") -> str:
        """What besides the question decides an answer; equal scopes may share entries.
        ``verified``: the generation of those collections' verified answers (core.verified)."""
        return f"{','.join(sorted(collections))}\x1f{route}\x1fk{top_k}\x1ft{temperature:g}\x1fv{verified}"

    @staticmethod
    def key(question: str, index_version: int, scope: str) -> str:
        raw = f"{index_version}\x1f{scope}\x1f{normalise(question)}"
        return "cache:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()

    @staticmethod
    def _semantic_list(tenant: str, scope: str) -> str:
        return f"semantic:{tenant}:{hashlib.sha256(scope.encode('utf-8')).hexdigest()[:16]}"

    async def get(self, key: str, *, tenant: str, scope: str, question: str) -> bytes | None:
        if not self._settings.enabled:
            return None
        try:
            value = await self._backend.get(key)
            if value is None and self._settings.semantic.enabled:
                similar = await self._similar(self._semantic_list(tenant, scope), question)
                value = await self._backend.get(similar) if similar else None
                CACHE.labels("semantic", "hit" if value else "miss").inc()
                return value
        except BackendUnavailable:
            BACKEND_ERRORS.labels("cache").inc()
            return None  # a cache that cannot answer is a miss, never an error
        CACHE.labels("exact", "hit" if value else "miss").inc()
        return value

    async def put(self, key: str, value: bytes, *, tenant: str, scope: str, question: str) -> None:
        if not self._settings.enabled:
            return
        try:
            await self._backend.set(key, value, self._settings.ttl_sec)
            if self._settings.semantic.enabled:
                vector = self._embedder.embed_sync([normalise(question)])[0].astype(np.float16)
                entry = orjson.dumps({"k": key, "v": base64.b64encode(vector.tobytes()).decode(), "q": question})
                where = self._semantic_list(tenant, scope)
                await self._backend.list_push(where, entry, self._settings.semantic.max_entries, self._settings.ttl_sec)
                self._semantic.pop(where, None)
        except BackendUnavailable:
            BACKEND_ERRORS.labels("cache").inc()

    async def _similar(self, where: str, question: str) -> str | None:
        entries = await self._entries(where)
        if not entries:
            return None
        norm = normalise(question)
        vector = self._embedder.embed_sync([norm])[0]
        words = frozenset(lexical_terms(norm))
        digits = sorted(_DIGITS.findall(norm))
        matrix = np.stack([e.vector for e in entries]).astype(np.float32)
        scores = matrix @ vector
        for i in np.argsort(-scores)[:5]:
            if scores[i] < self._settings.semantic.threshold:
                break
            entry = entries[i]
            overlap = len(words & entry.words) / max(len(words | entry.words), 1)
            if overlap >= MIN_WORD_OVERLAP and entry.digits == digits:
                return entry.key
        return None

    async def _entries(self, where: str) -> list[_Entry]:
        """Recent questions of one tenant and scope, re-read from the backend every couple of seconds."""
        cached = self._semantic.get(where)
        if cached and time.monotonic() - cached[0] < SEMANTIC_REFRESH_SEC:
            return cached[1]
        raw = await self._backend.list_range(where, self._settings.semantic.max_entries)
        entries = []
        for item in raw:
            data = orjson.loads(item)
            question = normalise(data["q"])
            vector = np.frombuffer(base64.b64decode(data["v"]), dtype=np.float16)
            words = frozenset(lexical_terms(question))
            entries.append(_Entry(vector, data["k"], words, sorted(_DIGITS.findall(question))))
        self._semantic[where] = (time.monotonic(), entries)
        return entries
