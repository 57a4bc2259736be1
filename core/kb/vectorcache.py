"""Chunk vectors kept by content hash, so re-ingesting (or evaluating, or rebuilding after a
chunking change) embeds only text the semantic model has not seen yet.

One SQLite file beside the index: key = SHA-256 of (embedder name, input text), value = the
float32 vector. Safe to delete; it only saves time.

A knowledge-base folder may also carry the vectors of its own chunks (``seed_name``: written by
``python -m core ingest --save-vectors``), so that a fresh clone of a repository whose documents
ship with their vectors embeds nothing on its first start. A seed is only ever read by key: a
changed chunk, or another embedder, simply misses and is embedded.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np


def seed_name(embedder: str) -> str:
    return f".vectors.{embedder}.npz"


def key(embedder: str, text: str) -> bytes:
    return hashlib.sha256(f"{embedder}\x00{text}".encode()).digest()[:20]


def write_seed(path: Path, embedder: str, texts: list[str], vectors: np.ndarray) -> None:
    keys = np.frombuffer(b"".join(key(embedder, t) for t in texts), dtype=np.uint8).reshape(len(texts), 20)
    with path.open("wb") as f:
        np.savez_compressed(f, keys=keys, vectors=np.asarray(vectors, dtype=np.float32))


def _read_seed(path: Path) -> dict[bytes, np.ndarray]:
    try:
        with np.load(path) as data:
            keys, vectors = data["keys"], data["vectors"]
    except (OSError, KeyError, ValueError):
        return {}  # unreadable: it only saves time
    return {bytes(k): v for k, v in zip(keys, vectors, strict=True)}


class VectorCache:
    def __init__(self, path: Path, embedder: str, seeds: list[Path] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        self._embedder = embedder
        self._seeds = [p for p in seeds or [] if p.is_file()]

    def _key(self, text: str) -> bytes:
        return key(self._embedder, text)

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
        seeded: dict[bytes, np.ndarray] = {}
        if len(found) < len(keys):
            for seed in self._seeds:
                seeded.update(_read_seed(seed))
        taken: list[int] = []
        for i, k in enumerate(keys):
            blob = found.get(k)
            if blob is not None and len(blob) == dim * 4:
                out[i] = np.frombuffer(blob, dtype=np.float32)
            elif k in seeded and seeded[k].shape == (dim,):
                out[i] = seeded[k]
                taken.append(i)
            else:
                missing.append(i)
        if taken:
            self.put([texts[i] for i in taken], out[taken])
        return out, missing

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors, strict=True)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
