"""Texts to term ids, a whole batch at a time.

Terms are stable 32-bit ids: CJK unigrams and bigrams come from one numpy pass over the
code points of the entire batch (no per-character Python loop), words from a cache of
folded-word ids. Ingest analyses each chunk once and feeds both BM25 and the hash
embedder from the result; that is what makes thousands of chunks per second possible
on two cores.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from itertools import chain

import numpy as np

from core.kb.text import STOPWORDS, fold_word

_WORD_RE = re.compile(r"[a-z0-9]+")
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x3040, 0x30FF), (0xAC00, 0xD7AF))
_SEPARATOR = "\n"
_CACHE_LIMIT = 500_000
_word_ids: dict[str, int] = {}
_trigram_ids: dict[str, list[int]] = {}


@dataclass(frozen=True)
class TermRows:
    """Per-text distinct term ids with their counts, texts one after another."""

    hashes: np.ndarray  # uint32
    counts: np.ndarray  # uint16
    offsets: np.ndarray  # int64, len = texts + 1

    @property
    def size(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.hashes[a:b], self.counts[a:b]

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.size, dtype=np.int64), np.diff(self.offsets))

    def merged(self) -> TermRows:
        """All rows summed into one (a question and its synonyms, for one vector)."""
        ids, inverse = np.unique(self.hashes, return_inverse=True)
        counts = np.bincount(inverse, weights=self.counts, minlength=len(ids))
        return TermRows(ids, np.minimum(counts, 65535).astype(np.uint16), np.asarray([0, len(ids)], np.int64))

    @staticmethod
    def from_pairs(rows: np.ndarray, ids: np.ndarray, n: int) -> TermRows:
        """Distinct (row, id) pairs with counts, grouped by row."""
        keys, counts = np.unique((rows.astype(np.uint64) << np.uint64(32)) | ids.astype(np.uint64), return_counts=True)
        key_rows = (keys >> np.uint64(32)).astype(np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(key_rows, minlength=n), out=offsets[1:])
        return TermRows(
            (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            np.minimum(counts, 65535).astype(np.uint16),
            offsets,
        )

    @staticmethod
    def join(parts: list[TermRows]) -> TermRows:
        """Rows of several batches, one after another."""
        offsets = [np.zeros(1, np.int64)]
        base = 0
        for part in parts:
            offsets.append(part.offsets[1:] + base)
            base += int(part.offsets[-1])
        return TermRows(
            np.concatenate([p.hashes for p in parts]) if parts else np.zeros(0, np.uint32),
            np.concatenate([p.counts for p in parts]) if parts else np.zeros(0, np.uint16),
            np.concatenate(offsets),
        )

    @staticmethod
    def concat(parts: list[tuple[TermRows, list[int]]]) -> TermRows:
        """Rows picked from several TermRows (old index rows and freshly ingested ones)."""
        hashes: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        lengths: list[int] = []
        for rows, picks in parts:
            for i in picks:
                h, c = rows.row(i)
                hashes.append(h)
                counts.append(c)
                lengths.append(len(h))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return TermRows(
            np.concatenate(hashes) if hashes else np.zeros(0, np.uint32),
            np.concatenate(counts) if counts else np.zeros(0, np.uint16),
            offsets,
        )


def _normalize(text: str) -> str:
    # NFKC only where it can change something: the quick check is far cheaper than the fold.
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text.lower()
    return unicodedata.normalize("NFKC", text).lower()


def _mix(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser: spreads code-point ids over 32 bits."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    return (x & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _word_id(word: str) -> int:
    """crc32 of the folded word, or -1 for a stopword."""
    wid = -1 if word in STOPWORDS else zlib.crc32(fold_word(word).encode())
    if len(_word_ids) < _CACHE_LIMIT:
        _word_ids[word] = wid
    return wid


def _trigrams(word: str) -> list[int]:
    folded = fold_word(word)
    if word in STOPWORDS or len(folded) <= 3:
        ids: list[int] = []
    else:
        padded = f"<{folded}>"
        ids = [zlib.crc32(padded[i : i + 3].encode()) for i in range(len(padded) - 2)]
    if len(_trigram_ids) < _CACHE_LIMIT:
        _trigram_ids[word] = ids
    return ids


def analyse(texts: list[str], *, trigrams: bool = False) -> tuple[TermRows, TermRows | None]:
    """Lexical term rows of each text, and (for the hash embedder) word-trigram rows."""
    n = len(texts)
    normalized = [_normalize(t) for t in texts]
    joined = _SEPARATOR.join(normalized)
    codepoints = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum([len(t) + 1 for t in normalized[:-1]], out=starts[1:])
    mask = np.zeros(len(codepoints), dtype=bool)
    for low, high in _CJK_RANGES:
        mask |= (codepoints >= low) & (codepoints <= high)
    uni_pos = np.flatnonzero(mask)
    bi_pos = np.flatnonzero(mask[:-1] & mask[1:])
    cjk_ids = _mix(
        np.concatenate(
            [
                codepoints[uni_pos].astype(np.uint64),
                codepoints[bi_pos].astype(np.uint64) * np.uint64(0x110000) + codepoints[bi_pos + 1],
            ]
        )
    )
    cjk_rows = np.searchsorted(starts, np.concatenate([uni_pos, bi_pos]), side="right") - 1

    word_rows: list[np.ndarray] = []
    word_ids: list[np.ndarray] = []
    tri_rows: list[np.ndarray] = []
    tri_ids: list[np.ndarray] = []
    get, tri_get = _word_ids.get, _trigram_ids.get
    for row, text in enumerate(normalized):
        words = _WORD_RE.findall(text)
        if not words:
            continue
        ids = np.fromiter((get(w) if w in _word_ids else _word_id(w) for w in words), np.int64, len(words))
        keep = ids >= 0
        word_ids.append(ids[keep])
        word_rows.append(np.full(int(keep.sum()), row, np.int64))
        if trigrams:
            tri = list(chain.from_iterable(tri_get(w) if w in _trigram_ids else _trigrams(w) for w in words))
            tri_ids.append(np.asarray(tri, np.int64))
            tri_rows.append(np.full(len(tri), row, np.int64))
    rows = TermRows.from_pairs(
        np.concatenate([cjk_rows, *word_rows]),
        np.concatenate([cjk_ids.astype(np.int64), *word_ids]),
        n,
    )
    if not trigrams:
        return rows, None
    empty = np.zeros(0, np.int64)
    return rows, TermRows.from_pairs(np.concatenate([empty, *tri_rows]), np.concatenate([empty, *tri_ids]), n)


_MASK64 = 0xFFFFFFFFFFFFFFFF


def _mix_int(x: int) -> int:
    """_mix for one int (the same murmur3 finaliser, so ids match the numpy path)."""
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    return x & 0xFFFFFFFF


def _is_cjk(cp: int) -> bool:
    return any(low <= cp <= high for low, high in _CJK_RANGES)


def count_terms(text: str, *, trigrams: bool = False) -> tuple[Counter[int], Counter[int]]:
    """Term-id counts (and word-trigram counts) of one question, in plain Python.

    For a sentence or two this is several times faster than the batch path's numpy calls,
    and it gives exactly the same ids (a test holds the two paths together)."""
    norm = _normalize(text)
    terms: Counter[int] = Counter()
    previous = -1
    for ch in norm:
        cp = ord(ch)
        if _is_cjk(cp):
            terms[_mix_int(cp)] += 1
            if previous >= 0:
                terms[_mix_int(previous * 0x110000 + cp)] += 1
            previous = cp
        else:
            previous = -1
    tri: Counter[int] = Counter()
    for word in _WORD_RE.findall(norm):
        wid = _word_ids.get(word)
        if wid is None:
            wid = _word_id(word)
        if wid >= 0:
            terms[wid] += 1
            if trigrams:
                ids = _trigram_ids.get(word)
                tri.update(_trigrams(word) if ids is None else ids)
    return terms, tri
