"""Build or update the index from a folder of documents.

Only documents whose bytes (or the chunking settings) changed are chunked and embedded
again; unchanged ones keep their vectors from the previous version, which is what makes
re-ingesting a large knowledge base after a one-file edit take seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.config import DEFAULT_COLLECTION, Settings
from core.kb import places, store
from core.kb.chunker import chunk_document, document_title
from core.kb.embedders import Embedder, EmbedderError, HashEmbedder
from core.kb.office import SUFFIXES as OFFICE_SUFFIXES
from core.kb.office import OfficeTextError, office_to_markdown
from core.kb.pdf import PdfTextError, pdf_to_markdown
from core.kb.synonyms import SynonymsError, read_groups
from core.kb.terms import TermRows, analyse
from core.kb.text import script_group
from core.kb.vectorcache import VectorCache, seed_name, write_seed

log = logging.getLogger("askhub.index")
PARSED = (".pdf", *OFFICE_SUFFIXES)  # converted to Markdown first; an unchanged one is not parsed again
SUFFIXES = (".md", ".markdown", ".txt", *PARSED)
ADDRESSES = ".addresses.json"  # in a synced source's folder: each document's url and modified time
EMBED_BATCH = 256
MODEL_BATCH = 32  # a model's batches: cached as they finish, and the bar's ETA moves often
PARALLEL_FROM = 4096  # chunks; below this, starting worker processes costs more than it saves


class IngestError(Exception):
    """Ingest refused to run; the message says why and what to do."""


@dataclass(frozen=True)
class IngestReport:
    version: int | None
    documents: int
    chunks: int
    embedded: int
    reused: int
    removed: int
    seconds: float
    skipped: tuple[str, ...] = ()  # "path: why" of each PDF or Office file that gave no text
    cached: int = 0  # of the new chunks, how many vectors the vector cache (or a folder's shipped vectors) had

    @property
    def changed(self) -> bool:
        return self.version is not None

    def summary(self) -> str:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        state = f"index version {self.version}" if self.changed else "index already up to date"
        cached = f", {self.cached} of them from the vector cache" if self.cached else ""
        return (
            f"{state}: {self.documents} documents, {self.chunks} chunks "
            f"({self.embedded} new{cached}, {self.reused} reused, {self.removed} documents removed) "
            f"in {self.seconds:.2f}s ({rate:.0f} chunks/s)"
        ) + "".join(f"\nskipped {why}" for why in self.skipped)


@dataclass(frozen=True)
class _Doc:
    collection: str
    id: str  # the path inside the collection's folder
    path: Path
    text: str | None  # None: a PDF or Office file already indexed with these bytes, not parsed again
    content_hash: str
    url: str | None = None  # a synced document's address at its source
    modified: str | None = None  # and its last-modified time there (ISO 8601)

    @property
    def key(self) -> tuple[str, str]:
        return self.collection, self.id


def _read_documents(
    folders: dict[str, Path], indexed: dict[tuple[str, str], str], sources: Sequence[tuple[str, Path, str]] = ()
) -> tuple[list[_Doc], list[str]]:
    """The documents, collection by collection (each collection one range of chunk ids), and
    "path: why" for each PDF that gave no text (skipped, not fatal: a scanned or locked PDF
    in a shared folder should not stop the rest being indexed). ``sources``: (collection,
    folder, id prefix) of synced sources, read after their collection's own folder; one not
    synced yet has no folder and adds nothing."""
    docs: list[_Doc] = []
    skipped: list[str] = []
    for collection, kb_dir in folders.items():
        if not kb_dir.is_dir():
            named = "" if collection == DEFAULT_COLLECTION else f" (collection {collection!r})"
            raise IngestError(f"knowledge-base folder not found: {kb_dir}{named}")
        _read_folder(collection, kb_dir, "", indexed, docs, skipped)
        for source_collection, folder, prefix in sources:
            if source_collection == collection and folder.is_dir():
                _read_folder(collection, folder, prefix, indexed, docs, skipped)
    return docs, skipped


def _read_folder(
    collection: str,
    kb_dir: Path,
    prefix: str,
    indexed: dict[tuple[str, str], str],
    docs: list[_Doc],
    skipped: list[str],
) -> None:
    where = _addresses(kb_dir)
    for path in sorted(kb_dir.rglob("*")):
        if path.suffix.lower() not in SUFFIXES or not path.is_file() or path.name.startswith("."):
            continue
        raw = path.read_bytes()
        relative = path.relative_to(kb_dir).as_posix()
        doc_id = prefix + relative
        content_hash = hashlib.sha256(raw).hexdigest()
        url, modified = where.get(relative, (None, None))
        text: str | None = None
        suffix = path.suffix.lower()
        if suffix in PARSED:
            if indexed.get((collection, doc_id)) == content_hash:
                docs.append(_Doc(collection, doc_id, path, None, content_hash, url, modified))
                continue
            try:
                if suffix == ".pdf":
                    text = pdf_to_markdown(raw, path.stem)
                else:
                    text = office_to_markdown(raw, suffix, path.stem)
            except (PdfTextError, OfficeTextError) as exc:
                skipped.append(f"{doc_id}: {exc}")
                continue
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise IngestError(f"{path}: not UTF-8 text") from None
        docs.append(_Doc(collection, doc_id, path, text, content_hash, url, modified))


def _addresses(folder: Path) -> dict[str, tuple[str | None, str | None]]:
    """Each synced document's address at its source and last-modified time (core/sources/mirror.py)."""
    manifest = folder / ADDRESSES
    if not manifest.is_file():
        return {}
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IngestError(f"{manifest}: unreadable ({type(exc).__name__})") from None
    return {name: (entry.get("url"), entry.get("modified")) for name, entry in entries.items()}


def _glossary(folders: list[Path]) -> list[list[str]]:
    """The synonym groups of every folder (KB_DIR and each collection's), each group once."""
    groups: list[list[str]] = []
    for folder in dict.fromkeys(folders):
        try:
            groups += [g for g in read_groups(folder) if g not in groups]
        except SynonymsError as exc:
            raise IngestError(str(exc)) from None
    return groups


def _embed_input(title: str, section: str, text: str) -> str:
    return f"{title}\n{section}\n{text}" if section else f"{title}\n{text}"


async def ingest_settings(
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = False,
    save_vectors: bool = False,
) -> IngestReport:
    """Ingest every collection of the settings into INDEX_DIR."""
    return await ingest(
        settings.collection_dirs(),
        settings.index_dir,
        embedder,
        chunk_chars=settings.retrieval.chunk_chars,
        exact_max=settings.retrieval.exact_max_chunks,
        rebuild=rebuild,
        progress=progress,
        glossary=settings.kb_dir,
        cache=vector_cache_path(settings),
        save_vectors=save_vectors,
        sources=settings.source_folders(),
    )


def vector_cache_path(settings: Settings) -> Path:
    """Beside INDEX_DIR (not inside it: versions come and go, the cache stays)."""
    return settings.index_dir.parent / f"{settings.index_dir.name}-vectors.sqlite"


async def ingest(
    kb_dir: Path | Mapping[str, Path],
    index_dir: Path,
    embedder: Embedder,
    *,
    chunk_chars: int,
    exact_max: int,
    rebuild: bool = False,
    progress: bool = False,
    glossary: Path | None = None,
    cache: Path | None = None,
    save_vectors: bool = False,
    sources: Sequence[tuple[str, Path, str]] = (),
) -> IngestReport:
    """Index one folder (the collection ``default``) or several collections (name -> folder)
    into one index whose chunks each know their collection. ``glossary``: a folder whose
    synonyms.yaml applies too (KB_DIR, above the collections' folders); ``cache``: a
    content-hash vector cache (vectorcache.py) a semantic model reads before embedding, after
    the vectors a folder ships with; ``save_vectors``: write each folder's (vectorcache.write_seed)."""
    started = time.perf_counter()
    folders = {DEFAULT_COLLECTION: kb_dir} if isinstance(kb_dir, Path) else dict(kb_dir)
    chunker = {"max_chars": chunk_chars}
    old = None if rebuild else _previous(index_dir)
    if old is not None and old.manifest["embedder"]["name"] != embedder.name:
        built_by = old.manifest["embedder"]["name"]
        if not (built_by.startswith("hash-") and getattr(embedder, "semantic", False)):
            raise IngestError(
                f"the index in {index_dir} was built with the '{built_by}' embedder but "
                f"'{embedder.name}' is configured; vectors of two embedders cannot be mixed. "
                "Re-ingest with --rebuild, or set INDEX_DIR to another folder."
            )
        # The default moved from hash to the semantic model: rebuilding costs no money and
        # loses nothing (hash vectors are recomputed in seconds), so nobody has to ask.
        log.warning("the index was built with '%s': rebuilding it with '%s'", built_by, embedder.name)
        old = None
    indexed = {_key(d): d["content_hash"] for d in old.manifest["documents"]} if old else {}
    docs, skipped = await asyncio.to_thread(
        _read_documents, folders, indexed if old and old.manifest["chunker"] == chunker else {}, sources
    )
    synonyms = _glossary(([glossary] if glossary else []) + list(folders.values()))
    reusable = _reusable(old.manifest, docs, chunker) if old else {}
    removed = len({_key(d) for d in old.manifest["documents"]} - {d.key for d in docs}) if old else 0
    if (
        old is not None
        and len(reusable) == len(docs)
        and not removed
        and old.manifest.get("synonyms") == synonyms
        and not save_vectors
    ):
        size = old.manifest["chunk_count"]
        return IngestReport(None, len(docs), size, 0, size, 0, time.perf_counter() - started, tuple(skipped))

    # Lay out the new version: unchanged documents keep their rows, the rest are chunked now.
    entries: list[store.DocumentEntry] = []
    chunks: list[tuple[str, str, str]] = []
    origin: list[tuple[bool, int]] = []  # (fresh?, row in the old index or in the fresh batch)
    fresh: list[str] = []
    for doc in docs:
        first = len(chunks)
        if doc.key in reusable and old is not None:
            start, count, title = reusable[doc.key]
            for i in range(start, start + count):
                chunks.append(old.texts[i])
                origin.append((False, i))
        else:
            assert doc.text is not None  # only unchanged PDFs and Office files go unparsed, and those are reusable
            title = document_title(doc.text, doc.path.stem)
            for n, piece in enumerate(chunk_document(doc.text, title, chunk_chars)):
                chunks.append((f"{doc.id}#{n}", piece.section, piece.text))
                origin.append((True, len(fresh)))
                fresh.append(_embed_input(title, piece.section, piece.text))
        entries.append(
            store.DocumentEntry(
                doc.id,
                str(doc.path),
                title,
                doc.content_hash,
                first,
                len(chunks) - first,
                doc.collection,
                url=doc.url,
                modified=doc.modified,
            )
        )

    seeds = [folder / seed_name(embedder.name) for folder in folders.values()]
    fresh_vectors, fresh_rows, cached = await _analyse_and_embed(embedder, fresh, progress, cache, seeds)
    dim = fresh_vectors.shape[1] if fresh else old.manifest["embedder"]["dim"] if old else embedder.dim
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    parts: list[tuple[TermRows, list[int]]] = []
    for row, (is_fresh, i) in enumerate(origin):
        source_rows = fresh_rows if is_fresh or old is None else old.rows
        vectors[row] = fresh_vectors[i] if is_fresh or old is None else old.vectors[i]
        if parts and parts[-1][0] is source_rows:
            parts[-1][1].append(i)
        else:
            parts.append((source_rows, [i]))
    texts = [
        doc.text
        if doc.text is not None
        else " ".join(c[2] for c in chunks[e.first_chunk : e.first_chunk + e.chunk_count])
        for e, doc in zip(entries, docs, strict=True)
    ]
    groups, entries = await asyncio.to_thread(_groups_and_places, entries, texts, len(chunks))
    if save_vectors and not isinstance(embedder, HashEmbedder):  # hash vectors cost nothing to recompute
        await asyncio.to_thread(_save_vectors, folders, embedder.name, entries, chunks, vectors)
    version = store.write(
        index_dir,
        embedder=embedder.name,
        dim=dim,
        chunker=chunker,
        documents=entries,
        chunks=chunks,
        vectors=vectors,
        rows=TermRows.concat(parts),
        exact_max=exact_max,
        synonyms=synonyms,
        groups=groups,
    )
    seconds = time.perf_counter() - started
    return IngestReport(
        version,
        len(docs),
        len(chunks),
        len(fresh),
        len(chunks) - len(fresh),
        removed,
        seconds,
        tuple(skipped),
        cached,
    )


def _groups_and_places(
    entries: list[store.DocumentEntry], texts: list[str], n_chunks: int
) -> tuple[np.ndarray, list[store.DocumentEntry]]:
    """Each chunk's script group and each document's places (CPU work, off the event loop)."""
    groups = np.zeros(n_chunks, dtype=np.uint8)
    named = []
    for entry, text in zip(entries, texts, strict=True):
        groups[entry.first_chunk : entry.first_chunk + entry.chunk_count] = script_group(f"{entry.title} {text[:4000]}")
        named.append(replace(entry, places=tuple(sorted(places.named(f"{entry.title}\n{text}")))))
    return groups, named


def _save_vectors(
    folders: dict[str, Path],
    embedder: str,
    entries: list[store.DocumentEntry],
    chunks: list[tuple[str, str, str]],
    vectors: np.ndarray,
) -> None:
    """Each folder's chunk vectors into the folder (vectorcache.write_seed), to ship with it."""
    for collection, folder in folders.items():
        texts: list[str] = []
        rows: list[int] = []
        for entry in entries:
            if entry.collection != collection:
                continue
            for i in range(entry.first_chunk, entry.first_chunk + entry.chunk_count):
                texts.append(_embed_input(entry.title, chunks[i][1], chunks[i][2]))
                rows.append(i)
        write_seed(folder / seed_name(embedder), embedder, texts, vectors[rows])


def _previous(index_dir: Path) -> store.IngestState | None:
    try:
        return store.load_ingest_state(index_dir)
    except store.IndexLoadError:
        return None  # unreadable or an older format: rebuild from scratch


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    """A manifest document's (collection, id); indexes from before collections hold default."""
    return entry.get("collection", DEFAULT_COLLECTION), entry["id"]


def _reusable(
    manifest: dict[str, Any], docs: list[_Doc], chunker: dict[str, Any]
) -> dict[tuple[str, str], tuple[int, int, str]]:
    """Documents whose bytes and chunking are unchanged: (collection, id) -> (first row, row count, title)."""
    if manifest["chunker"] != chunker:
        return {}
    current = {doc.key: doc.content_hash for doc in docs}
    return {
        _key(d): (d["first_chunk"], d["chunk_count"], d["title"])
        for d in manifest["documents"]
        if current.get(_key(d)) == d["content_hash"]
    }


def _hash_batch(dim: int, texts: list[str]) -> tuple[np.ndarray, TermRows]:
    """One batch of the hash embedder's work (runs in a worker process for big ingests)."""
    terms, trigrams = analyse(texts, trigrams=True)
    return HashEmbedder(dim).vectors(terms, trigrams), terms


async def _analyse_and_embed(
    embedder: Embedder, texts: list[str], progress: bool, cache: Path | None = None, seeds: list[Path] | None = None
) -> tuple[np.ndarray, TermRows, int]:
    """BM25 term rows and vectors of the new chunks; the hash embedder reuses the analysis
    and, for big ingests, spreads batches over every core. A model's vectors come from the
    content-hash cache where it has them; only the rest is embedded."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), TermRows.join([]), 0
    batches = [texts[i : i + EMBED_BATCH] for i in range(0, len(texts), EMBED_BATCH)]
    if isinstance(embedder, HashEmbedder):
        vectors: list[np.ndarray] = []
        rows: list[TermRows] = []
        workers = min(os.cpu_count() or 1, 4) if len(texts) >= PARALLEL_FROM else 1
        with _pool(workers) as pool, _bar(len(texts), progress) as bar:
            loop = asyncio.get_running_loop()
            futures = [loop.run_in_executor(pool, _hash_batch, embedder.dim, b) for b in batches]
            for future, batch in zip(futures, batches, strict=True):
                batch_vectors, batch_rows = await future
                vectors.append(batch_vectors)
                rows.append(batch_rows)
                bar.update(len(batch))
        return np.concatenate(vectors), TermRows.join(rows), 0
    terms = TermRows.join([analyse(b)[0] for b in batches])
    store_ = VectorCache(cache, embedder.name, seeds) if cache is not None and _dim(embedder) else None
    try:
        if store_ is not None:
            found, missing = await asyncio.to_thread(store_.get, texts, embedder.dim)
        else:
            found, missing = None, list(range(len(texts)))
        todo = [texts[i] for i in missing]
        parts: list[np.ndarray] = []
        with _bar(len(todo), progress) as bar:
            for start in range(0, len(todo), MODEL_BATCH):
                batch = todo[start : start + MODEL_BATCH]
                parts.append(await embedder.embed(batch))
                if store_ is not None:
                    await asyncio.to_thread(store_.put, batch, parts[-1])
                bar.update(len(batch))
    finally:
        if store_ is not None:
            store_.close()
    fresh = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    if found is None:
        return fresh, terms, 0
    found[missing] = fresh
    return found, terms, len(texts) - len(missing)


def _dim(embedder: Embedder) -> int:
    """The embedder's dimension, 0 while unknown (an OpenAI model's until its first call)."""
    try:
        return embedder.dim
    except EmbedderError:
        return 0


def _bar(total: int, progress: bool) -> tqdm:
    # disable=None lets tqdm hide the bar when stderr is not a terminal (CI logs); it shows the ETA.
    return tqdm(total=total, unit="chunk", desc="embedding", disable=None if progress else True)


def _pool(workers: int) -> Executor:
    if workers <= 1:
        return ThreadPoolExecutor(1)  # off the event loop, same process
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
