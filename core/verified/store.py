"""Where verified answers live: durable tables of the shared state backend.

Each answer is one record (no expiry: with Redis and its append-only file they survive a
restart of the whole deployment), and each collection has a generation that every change
to one of its answers raises. Generations are how every process learns that its copy of the
answers, and its cached answers for that collection, are out of date.

With the memory backend (one process) the records would die with the process, and they are
people's work, not a cache: so that deployment also keeps them in a JSON file (by default
beside the index), read at start and rewritten after every change. If the file cannot be
written, the hub says so in its log and keeps the answers in memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import orjson

from core.config import Settings
from core.state import StateBackend
from core.verified.model import VerifiedAnswer

ANSWERS = "verified:answers"
GENERATIONS = "verified:generations"
log = logging.getLogger("askhub.verified")


def snapshot_path(settings: Settings) -> Path:
    """A memory deployment's file: ``verified.file``, else beside the index (INDEX_DIR-verified.json)."""
    return settings.verified.file or settings.index_dir.with_name(settings.index_dir.name + "-verified.json")


class VerifiedStore:
    def __init__(self, backend: StateBackend, snapshot: Path | None = None) -> None:
        """``snapshot``: the file a memory deployment keeps its answers in (None with Redis)."""
        self._backend = backend
        self._snapshot = snapshot

    async def load_snapshot(self) -> None:
        """A memory deployment's answers from its file, once at start."""
        if self._snapshot is None or not self._snapshot.is_file():
            return
        try:
            rows = orjson.loads(await asyncio.to_thread(self._snapshot.read_bytes))
            answers = [VerifiedAnswer(**row) for row in rows]
        except (OSError, ValueError, TypeError) as exc:
            where = {"path": str(self._snapshot), "exc": type(exc).__name__}
            log.warning("verified answers file unreadable", extra=where)
            return
        for answer in answers:
            await self._backend.table_set(ANSWERS, answer.id, answer.dumps())
        for collection in {a.collection for a in answers}:
            await self._backend.table_incr(GENERATIONS, collection)

    async def put(self, answer: VerifiedAnswer, *, touched: set[str]) -> None:
        """Write one answer, then raise the generation of every collection it was or is in."""
        await self._backend.table_set(ANSWERS, answer.id, answer.dumps())
        for collection in sorted(touched):
            await self._backend.table_incr(GENERATIONS, collection)
        if self._snapshot is not None:
            await self._write_snapshot()

    async def get(self, answer_id: str) -> VerifiedAnswer | None:
        return next((a for a in await self.all() if a.id == answer_id), None)

    async def all(self) -> list[VerifiedAnswer]:
        rows = await self._backend.table_all(ANSWERS)
        return sorted((VerifiedAnswer.loads(raw) for raw in rows.values()), key=lambda a: a.created_at)

    async def generations(self) -> dict[str, int]:
        return {name: int(value) for name, value in (await self._backend.table_all(GENERATIONS)).items()}

    async def _write_snapshot(self) -> None:
        assert self._snapshot is not None
        data = orjson.dumps([a.as_dict() for a in await self.all()], option=orjson.OPT_INDENT_2)
        try:
            await asyncio.to_thread(_replace, self._snapshot, data)
        except OSError as exc:
            log.warning("verified answers file not written; they are kept in memory only",
                        extra={"path": str(self._snapshot), "exc": type(exc).__name__})  # fmt: skip


def _replace(path: Path, data: bytes) -> None:
    """Written aside and renamed: a crash mid-write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
