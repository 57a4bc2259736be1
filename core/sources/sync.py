"""One sync of one source, by rules that lose nothing.

- One sync per source at a time: an exclusive lock on a file beside its copy (every process
  on the index's volume), and with Redis also a lock in the shared state (processes on other
  machines). A second sync finds it held and reports ``busy``; a crashed one frees both (the
  file lock with its process, the Redis lock when its lease runs out).
- The source is read whole before anything changes. A failed read — the host down, a page
  answering 500, a 429 that does not end — changes no file and removes no document.
- Then the copy is updated (each file written aside and renamed), and the ordinary ingest
  builds a new index version and swaps it in atomically; unchanged documents keep their
  vectors, so a sync where nothing changed embeds nothing. A crash between the two leaves a
  copy the next sync completes: file names follow from URLs, so nothing is doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.config import Settings, SourceSettings
from core.kb.embedders import Embedder
from core.kb.ingest import IngestError, ingest_settings
from core.metrics import SOURCE_DOCUMENTS, SOURCE_INTERVAL, SOURCE_LAST_SUCCESS, SOURCE_SYNCS
from core.sources.mirror import Known, Mirror, SourceState
from core.sources.web import SyncFailed, WebSource
from core.state.base import BackendUnavailable, StateBackend

log = logging.getLogger("askhub.sources")
AUDIT = logging.getLogger("askhub.audit")
LEASE_SEC = 600.0  # the Redis lock's lease, renewed while the sync runs


@dataclass(frozen=True)
class SyncReport:
    source: str
    outcome: str  # ok | failed | busy
    documents: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    error: str | None = None


class SourceSync:
    """Runs syncs for the sources of one settings snapshot."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        *,
        backend: StateBackend | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._embedder = embedder
        self._backend = backend
        self._client = client

    @property
    def settings(self) -> Settings:
        return self._settings

    def source(self, name: str) -> SourceSettings:
        for source in self._settings.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def mirror(self, source: SourceSettings) -> Mirror:
        return Mirror(self._settings.sources_dir() / source.name)

    async def run(self, name: str) -> SyncReport:
        source = self.source(name)
        async with self._locked(source) as held:
            if not held:
                report = SyncReport(name, "busy")
            else:
                report = await self._sync(source)
        SOURCE_SYNCS.labels(name, report.outcome).inc()
        AUDIT.info(
            "source sync",
            extra={
                "source": name,
                "outcome": report.outcome,
                "added": report.added,
                "changed": report.changed,
                "removed": report.removed,
                "documents": report.documents,
            },
        )
        return report

    async def _sync(self, source: SourceSettings) -> SyncReport:
        mirror = self.mirror(source)
        state = await asyncio.to_thread(mirror.state)
        try:
            if source.type == "web":
                report = await self._apply(source, mirror, state)
            else:
                if not self._folder(source).is_dir():
                    raise SyncFailed(f"folder not found: {self._folder(source)}")
                report = SyncReport(source.name, "ok", documents=_count(self._folder(source)))
            await self._ingest()
        except (SyncFailed, IngestError, OSError) as exc:
            error = str(exc) if not isinstance(exc, OSError) else f"{type(exc).__name__} writing {mirror.folder}"
            log.warning("source %s: sync failed, nothing removed: %s", source.name, error)
            state = await asyncio.to_thread(mirror.state)
            state.last_sync, state.outcome, state.error = time.time(), "failed", error
            await asyncio.to_thread(mirror.save_state, state)
            return SyncReport(source.name, "failed", documents=len(state.documents), error=error)
        state = await asyncio.to_thread(mirror.state)
        now = time.time()
        state.last_sync = state.last_success = now
        state.outcome, state.error = "ok", None
        if source.type != "web":
            state.documents = {}
        await asyncio.to_thread(mirror.save_state, state)
        SOURCE_DOCUMENTS.labels(source.name).set(report.documents)
        SOURCE_LAST_SUCCESS.labels(source.name).set(now)
        return report

    async def _apply(self, source: SourceSettings, mirror: Mirror, state: SourceState) -> SyncReport:
        """Read the source whole, then change the copy (see the module docstring)."""
        listing = await WebSource(source, client=self._client).read(state)
        documents: dict[str, Known] = {}
        added = changed = 0
        for url, page in listing.pages.items():
            known = state.documents.get(url)
            documents[url] = await asyncio.to_thread(mirror.write_page, page, known)
            added += known is None
            changed += known is not None
        for url in listing.unchanged:
            if url in state.documents:
                documents[url] = state.documents[url]
        removed = [state.documents[url] for url in listing.gone if url in state.documents and url not in documents]
        await asyncio.to_thread(mirror.publish, documents)
        for known in removed:
            await asyncio.to_thread(mirror.remove, known)
        state.documents = documents
        await asyncio.to_thread(mirror.save_state, state)
        for known in removed:
            log.info("source %s: %s removed at its source", source.name, known.file)
        return SyncReport(source.name, "ok", len(documents), added, changed, len(removed))

    async def _ingest(self) -> None:
        """Build the new index version (one ingest at a time per index, across processes)."""
        index_dir = self._settings.index_dir
        await asyncio.to_thread(index_dir.mkdir, parents=True, exist_ok=True)
        lock = await asyncio.to_thread(open, index_dir / ".build.lock", "w")
        with lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                report = await ingest_settings(self._settings, self._embedder)
                log.info(report.summary())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _folder(self, source: SourceSettings) -> Path:
        assert source.path is not None
        return source.path if source.path.is_absolute() else self._settings.kb_dir / source.path

    @contextlib.asynccontextmanager
    async def _locked(self, source: SourceSettings) -> AsyncIterator[bool]:
        folder = self._settings.sources_dir()
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(open, folder / f".{source.name}.lock", "w")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            async with self._shared_lock(source.name) as shared:
                yield shared
        finally:
            handle.close()

    @contextlib.asynccontextmanager
    async def _shared_lock(self, name: str) -> AsyncIterator[bool]:
        if self._backend is None or self._backend.name == "memory":
            yield True
            return
        key, token = f"source:lock:{name}", secrets.token_hex(8).encode()
        try:
            held = await self._backend.set(key, token, LEASE_SEC, only_if_absent=True)
        except BackendUnavailable:
            held = False
        if not held:
            yield False
            return
        renew = asyncio.create_task(self._renew(key, token))
        try:
            yield True
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError, BackendUnavailable):
                await renew
                if await self._backend.get(key) == token:
                    await self._backend.delete(key)

    async def _renew(self, key: str, token: bytes) -> None:
        assert self._backend is not None
        while True:
            await asyncio.sleep(LEASE_SEC / 3)
            with contextlib.suppress(BackendUnavailable):
                await self._backend.set(key, token, LEASE_SEC)


def _count(folder: Path) -> int:
    from core.kb.ingest import SUFFIXES

    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))


def status_lines(settings: Settings) -> list[dict[str, object]]:
    """One status object per source (``python -m core sources status``), read from its copy."""
    lines: list[dict[str, object]] = []
    for source in settings.sources:
        state = Mirror(settings.sources_dir() / source.name).state()
        documents = len(state.documents) if source.type == "web" else _count(_folder_of(settings, source))
        lines.append(
            {
                "name": source.name,
                "type": source.type,
                "collection": source.collection,
                "last_sync": _iso(state.last_sync),
                "last_success": _iso(state.last_success),
                "outcome": state.outcome,
                "documents": documents,
                "error": state.error,
            }
        )
        SOURCE_DOCUMENTS.labels(source.name).set(documents)
        if state.last_success:
            SOURCE_LAST_SUCCESS.labels(source.name).set(state.last_success)
        if source.every:
            SOURCE_INTERVAL.labels(source.name).set(source.every)
    return lines


def _folder_of(settings: Settings, source: SourceSettings) -> Path:
    if source.type == "folder" and source.path is not None:
        return source.path if source.path.is_absolute() else settings.kb_dir / source.path
    return settings.sources_dir() / source.name


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
