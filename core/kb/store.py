"""The index on disk: versioned directories and a CURRENT pointer swapped atomically.

    INDEX_DIR/CURRENT          name of the live version directory
    INDEX_DIR/v000007/         manifest.json, chunks.bin, dense.faiss, lexical.*.npy,
                               vectors.npy and terms.*.npy (the last two for re-ingest)

A new version is written to a temporary directory, fsynced, renamed, and only then named
in CURRENT (os.replace), so a crash at any point leaves the previous version live.

A server keeps the small lookup arrays in memory. Chunk texts, and for a big index also the
postings, are read by range when a question needs them (diskarray.py),
through the page cache that every worker process of the machine shares.
"""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import orjson

from core.config import DEFAULT_COLLECTION
from core.kb import dense
from core.kb.diskarray import DiskArray
from core.kb.lexical import LexicalIndex
from core.kb.synonyms import Synonyms
from core.kb.terms import TermRows, count_terms

FORMAT = 2
IN_MEMORY_MAX_BYTES = 64 * 1024 * 1024
KEEP_VERSIONS = 2
_SEP = "\x1f"  # between a chunk's id, section and text in chunks.bin


class IndexLoadError(Exception):
    """The index is missing, unreadable or incompatible; the message says which."""


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    doc_id: str
    title: str
    section: str
    text: str
    source: str
    collection: str = DEFAULT_COLLECTION
    url: str | None = None  # the document's address at its source, for a synced one


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    id: str  # the path inside its collection's folder
    path: str
    title: str
    content_hash: str
    first_chunk: int
    chunk_count: int
    collection: str = DEFAULT_COLLECTION  # absent from indexes built before collections: default
    places: tuple[str, ...] = ()  # the countries it names (places.py); absent from older indexes: none
    url: str | None = None  # a synced document's address at its source (core/sources/)
    modified: str | None = None  # its last-modified time there


class ChunkTexts:
    """(id, section, text) of every chunk, decoded on demand from one memory-mapped file."""

    def __init__(self, blob: DiskArray, offsets: np.ndarray) -> None:
        self._blob = blob
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> tuple[str, str, str]:
        raw = self._blob.read(int(self._offsets[i]), int(self._offsets[i + 1])).tobytes().decode("utf-8")
        chunk_id, section, text = raw.split(_SEP, 2)
        return chunk_id, section, text

    @staticmethod
    def write(path: Path, chunks: list[tuple[str, str, str]]) -> None:
        encoded = [_SEP.join(c).encode("utf-8") for c in chunks]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        (path / "chunks.bin").write_bytes(b"".join(encoded))
        np.save(path / "chunks.offsets.npy", offsets)

    @staticmethod
    def open(path: Path) -> ChunkTexts:
        return ChunkTexts(DiskArray(path / "chunks.bin", raw=True), np.load(path / "chunks.offsets.npy"))


@dataclass(frozen=True)
class TitleTerms:
    """Each document's title as term ids (``terms[offsets[d]:offsets[d + 1]]``), analysed
    once when the index loads: compact arrays, read for a whole candidate list at once."""

    terms: np.ndarray  # uint32
    offsets: np.ndarray  # int64, one more than there are documents

    @staticmethod
    def build(titles: list[str]) -> TitleTerms:
        ids = [np.fromiter(count_terms(title)[0], dtype=np.uint32) for title in titles]
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in ids], out=offsets[1:])
        return TitleTerms(np.concatenate(ids) if ids else np.zeros(0, np.uint32), offsets)


@dataclass(frozen=True)
class KnowledgeIndex:
    """One loaded index version: what retrieval needs, never mutated."""

    version: int
    name: str
    embedder: str
    dim: int
    documents: list[DocumentEntry]
    texts: ChunkTexts
    dense: faiss.Index
    lexical: LexicalIndex
    synonyms: Synonyms
    titles: TitleTerms
    groups: np.ndarray  # uint8 per chunk: its document's script group (text.script_group)
    centroids: np.ndarray  # float32 (groups, dim): each group's mean vector; empty if unknown

    @property
    def size(self) -> int:
        return len(self.texts)

    def chunk(self, i: int) -> Chunk:
        doc = self.documents[bisect.bisect_right(self._starts, i) - 1]
        chunk_id, section, text = self.texts[i]
        return Chunk(chunk_id, doc.id, doc.title, section, text, doc.path, doc.collection, doc.url)

    @property
    def collections(self) -> tuple[str, ...]:
        """The collections this index holds, in the order of their chunk ranges."""
        return tuple(dict.fromkeys(d.collection for d in self.documents))

    def subset(self, collections: frozenset[str] | None) -> dense.Subset | None:
        """The chunks of the given collections (None: every chunk may be a candidate).

        Chunks are laid out collection by collection, so the mask is a few ranges; it is kept
        per collection set (an index sees only the handful of sets its askers have)."""
        if collections is None or set(self.collections) <= collections:
            return None
        cache: dict[frozenset[str], dense.Subset] = self.__dict__.setdefault("_subsets", {})
        subset = cache.get(collections)
        if subset is None:
            mask = np.zeros(self.size, dtype=bool)
            for d in self.documents:
                if d.collection in collections:
                    mask[d.first_chunk : d.first_chunk + d.chunk_count] = True
            subset = dense.Subset(mask)
            if len(cache) < 64:
                cache[collections] = subset
        return subset

    def group_subset(self, group: int, collections: frozenset[str] | None) -> dense.Subset:
        """The chunks of one script group (within the given collections), kept like ``subset``."""
        cache: dict[tuple[int, frozenset[str] | None], dense.Subset] = self.__dict__.setdefault("_groups", {})
        subset = cache.get((group, collections))
        if subset is None:
            readable = self.subset(collections)
            mask = self.groups == group
            subset = dense.Subset(mask & readable.mask if readable is not None else mask)
            if len(cache) < 64:
                cache[(group, collections)] = subset
        return subset

    def chunks(self) -> Iterator[Chunk]:
        return (self.chunk(i) for i in range(self.size))

    def documents_of(self, ids: np.ndarray) -> np.ndarray:
        """The position in ``documents`` of each chunk id."""
        return np.searchsorted(self._starts, ids, side="right") - 1

    @property
    def _starts(self) -> np.ndarray:
        """Each document's first chunk id, ascending."""
        starts = self.__dict__.get("_starts_cache")
        if starts is None:
            starts = np.fromiter((d.first_chunk for d in self.documents), dtype=np.int64, count=len(self.documents))
            object.__setattr__(self, "_starts_cache", starts)
        return starts


def current_name(index_dir: Path) -> str | None:
    try:
        return (index_dir / "CURRENT").read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    name = current_name(index_dir)
    if name is None:
        return None
    try:
        manifest = orjson.loads((index_dir / name / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise IndexLoadError(f"index {index_dir / name} is unreadable: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise IndexLoadError(
            f"index {index_dir / name} has format {manifest.get('format')}, this hub reads {FORMAT}: "
            "re-ingest with `python -m core ingest --rebuild`"
        )
    return manifest


def load(index_dir: Path) -> KnowledgeIndex | None:
    """The live version, or None when no index was built yet."""
    name = current_name(index_dir)
    if name is None:
        return None
    path = index_dir / name
    manifest = read_manifest(index_dir)
    assert manifest is not None
    try:
        # The postings of a big index stay on disk, read by range (diskarray.py); a small
        # index's are simply loaded, which is faster per question.
        big = ("lexical.post_docs", "lexical.post_weights")
        on_disk = sum((path / f"{name}.npy").stat().st_size for name in big) > IN_MEMORY_MAX_BYTES

        def array(name: str) -> Any:
            return DiskArray(path / f"{name}.npy") if on_disk and name in big else np.load(path / f"{name}.npy")

        arrays = {n: array(f"lexical.{n}") for n in LexicalIndex.ARRAYS}
        lexical = LexicalIndex.from_arrays(arrays)
        dense_index = dense.load(str(path / "dense.faiss"))
        texts = ChunkTexts.open(path)
        calibrated = (path / "centroids.npy").is_file()  # indexes written before calibration lack it
        groups = np.load(path / "groups.npy") if calibrated else np.zeros(len(texts), np.uint8)
        centroids = np.load(path / "centroids.npy") if calibrated else np.zeros((0, 0), np.float32)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise IndexLoadError(f"index {path} is unreadable: {exc}") from None
    documents = [DocumentEntry(**d) for d in manifest["documents"]]
    return KnowledgeIndex(
        version=manifest["index_version"],
        name=name,
        embedder=manifest["embedder"]["name"],
        dim=manifest["embedder"]["dim"],
        documents=documents,
        texts=texts,
        dense=dense_index,
        lexical=lexical,
        synonyms=Synonyms(manifest.get("synonyms", [])),
        titles=TitleTerms.build([d.title for d in documents]),
        groups=groups,
        centroids=centroids,
    )


@dataclass(frozen=True)
class IngestState:
    """What incremental ingest reuses from the live version."""

    manifest: dict[str, Any]
    texts: ChunkTexts
    vectors: np.ndarray
    rows: TermRows


def load_ingest_state(index_dir: Path) -> IngestState | None:
    manifest = read_manifest(index_dir)
    if manifest is None:
        return None
    path = index_dir / str(current_name(index_dir))
    try:
        t = {n: np.load(path / f"terms.{n}.npy", mmap_mode="r") for n in ("hashes", "counts", "offsets")}
        return IngestState(
            manifest,
            ChunkTexts.open(path),
            np.load(path / "vectors.npy", mmap_mode="r"),
            TermRows(t["hashes"], t["counts"], t["offsets"]),
        )
    except (OSError, KeyError, ValueError) as exc:
        raise IndexLoadError(f"index {path} is unreadable: {exc}") from None


def write(
    index_dir: Path,
    *,
    embedder: str,
    dim: int,
    chunker: dict[str, Any],
    documents: list[DocumentEntry],
    chunks: list[tuple[str, str, str]],
    vectors: np.ndarray,
    rows: TermRows,
    exact_max: int,
    synonyms: list[list[str]],
    groups: np.ndarray | None = None,
) -> int:
    """Write a new version and make it live; returns its version number."""
    index_dir.mkdir(parents=True, exist_ok=True)
    try:
        previous = read_manifest(index_dir)
    except IndexLoadError:
        previous = None  # an unreadable or older index is replaced, not extended
    version = (previous["index_version"] if previous else _highest_version(index_dir)) + 1
    name = f"v{version:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
    try:
        manifest = {
            "format": FORMAT,
            "index_version": version,
            "created_at": time.time(),
            "embedder": {"name": embedder, "dim": dim},
            "chunker": chunker,
            "chunk_count": len(chunks),
            "synonyms": synonyms,
            "documents": [asdict(d) for d in documents],
        }
        (tmp / "manifest.json").write_bytes(orjson.dumps(manifest))
        ChunkTexts.write(tmp, chunks)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        np.save(tmp / "vectors.npy", vectors)
        for key, array in (("hashes", rows.hashes), ("counts", rows.counts), ("offsets", rows.offsets)):
            np.save(tmp / f"terms.{key}.npy", array)
        for key, array in LexicalIndex.build(rows).arrays().items():
            np.save(tmp / f"lexical.{key}.npy", array)
        dense.save(dense.build(vectors, exact_max), str(tmp / "dense.faiss"))
        if groups is not None:
            np.save(tmp / "groups.npy", groups.astype(np.uint8))
            np.save(tmp / "centroids.npy", group_centroids(vectors, groups))
        for f in tmp.iterdir():
            _fsync(f)
        final = index_dir / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync(index_dir)
        pointer = index_dir / "CURRENT.tmp"
        pointer.write_text(name + "\n", encoding="utf-8")
        _fsync(pointer)
        os.replace(pointer, index_dir / "CURRENT")
        _fsync(index_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _prune(index_dir, keep=name)
    return version


CENTROID_PRIOR = 3  # chunks' worth of the whole index's mean mixed into each group's mean


def group_centroids(vectors: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each script group's mean chunk vector: a question's inner product with it is its
    average similarity to that group, the baseline retrieval subtracts (retriever.py).

    A small group's mean is mostly its own few documents, and subtracting it would push
    exactly those down: it is shrunk toward the whole index's mean (CENTROID_PRIOR)."""
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    sums = np.zeros((2, dim), dtype=np.float64)
    counts = np.array([np.count_nonzero(groups == g) for g in range(2)], dtype=np.float64)
    for g in range(2):
        rows = np.flatnonzero(groups == g)
        for start in range(0, len(rows), 65536):  # bounded memory for a memory-mapped array
            sums[g] += vectors[rows[start : start + 65536]].sum(axis=0)
    overall = sums.sum(axis=0) / max(counts.sum(), 1)
    return ((sums + CENTROID_PRIOR * overall) / (counts + CENTROID_PRIOR)[:, None]).astype(np.float32)


def _highest_version(index_dir: Path) -> int:
    numbers = [int(p.name[1:]) for p in index_dir.glob("v[0-9]*") if p.name[1:].isdigit()]
    return max(numbers, default=0)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(index_dir: Path, keep: str) -> None:
    """Keep the newest versions: a server may still be reading the previous one."""
    versions = sorted(p for p in index_dir.iterdir() if p.is_dir() and p.name.startswith("v"))
    for old in versions[:-KEEP_VERSIONS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".tmp-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
