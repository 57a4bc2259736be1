"""Chunk vectors kept by content hash, so re-ingesting (or evaluating, or rebuilding after a
chunking change) embeds only text the semantic model has not seen yet.

One SQLite file beside the index: key = SHA-256 of (embedder name, input text), value = the
float32 vector. Safe to delete; it only saves time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np


class VectorCache:
    def __init__(self, path: Path, embedder: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        self._embedder = embedder

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self._embedder}\x00{text}".encode()).digest()[:20]

    def get(self, texts: list[str], dim: int) -> tuple[np.ndarray, list[int]]:
        """The cached vectors (zero rows where missing) and the positions still to embed."""
        out = np.zeros((len(texts), dim), dtype=np.float32)
        missing: list[int] = []
        keys = [self._key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
            ).fetchall()
            found.update(rows)
        for i, key in enumerate(keys):
            blob = found.get(key)
            if blob is not None and len(blob) == dim * 4:
                out[i] = np.frombuffer(blob, dtype=np.float32)
            else:
                missing.append(i)
        return out, missing

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors, strict=True)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
