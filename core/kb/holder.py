"""The live index of a server process, swapped for a newer version without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from pathlib import Path

from core.config import Settings
from core.kb import store
from core.kb.embedders import Embedder
from core.kb.ingest import IngestError, ingest_settings
from core.metrics import INDEX_CHUNKS, INDEX_VERSION

log = logging.getLogger("askhub.index")


class IndexHolder:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._settings = settings
        self._embedder = embedder
        self._dir: Path = settings.index_dir
        self.current: store.KnowledgeIndex | None = None
        self.error: str | None = "index not loaded yet"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the index, building it first when this is the very first start."""
        if store.current_name(self._dir) is None:
            await self._first_build()
        await asyncio.to_thread(self._load)
        self._task = asyncio.create_task(self._watch(), name="index-reload")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _first_build(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        # Several workers may start at once: one builds, the others wait and then load.
        lock = await asyncio.to_thread(open, self._dir / ".build.lock", "w")
        with lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                if store.current_name(self._dir) is None:
                    log.info("no index in %s yet: building it from %s", self._dir, self._settings.kb_dir)
                    report = await ingest_settings(self._settings, self._embedder)
                    log.info(report.summary())
            except IngestError as exc:
                self.error = f"cannot build the index: {exc}"
                log.error(self.error)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> bool:
        try:
            index = store.load(self._dir)
        except store.IndexLoadError as exc:
            self.error = str(exc)
            log.error(self.error)
            return False
        if index is None:
            self.error = self.error or f"no index in {self._dir}"
            return False
        if index.embedder != self._embedder.name:
            self.error = (
                f"index version {index.version} was built with '{index.embedder}' but EMBEDDINGS gives "
                f"'{self._embedder.name}': re-ingest with `python -m core ingest --rebuild`"
            )
            log.error(self.error)
            return False
        learn_dim = getattr(self._embedder, "learn_dim", None)  # a cloud embedder's withheld questions need it
        if learn_dim is not None:
            learn_dim(index.dim)
        self.current = index
        self.error = None
        INDEX_CHUNKS.set(index.size)
        INDEX_VERSION.set(index.version)
        log.info("index version %s loaded: %s chunks", index.version, index.size)
        return True

    async def reload_if_changed(self) -> bool:
        name = await asyncio.to_thread(store.current_name, self._dir)
        if name is None or (self.current is not None and name == self.current.name):
            return False
        return await asyncio.to_thread(self._load)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._settings.retrieval.reload_interval_sec)
            try:
                await self.reload_if_changed()
            except Exception:  # keep serving the loaded version whatever a bad file does
                log.exception("index reload failed")
