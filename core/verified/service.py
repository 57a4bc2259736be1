"""Verified answers: save, edit, retire, list — and match a question before retrieval.

One instance per process (``hub.verified``, ``door.verified`` for adapters). Every change
raises its collection's generation in the shared backend; each process compares generations
before it matches a question (one small read, on the uncached path only) and once a second in
the background, and the generation of the asker's collections is part of the answer cache's
scope (``generation``): a save, edit or retire therefore makes every cached answer of that
collection unreachable — at once in the process that made the change, within about a second
in the others — without any work on the cached path.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
import time
from dataclasses import replace
from pathlib import Path

from core.auth.collections import CollectionPolicy
from core.auth.service import fingerprint
from core.errors import BadRequest, NotFound
from core.flush import Flusher
from core.kb.embedders import Embedder
from core.metrics import BACKEND_ERRORS
from core.pii import redact
from core.state import BackendUnavailable, StateBackend
from core.verified.matcher import Matcher, default_threshold
from core.verified.model import VerifiedAnswer
from core.verified.store import VerifiedStore

AUDIT = logging.getLogger("askhub.audit")
MAX_QUESTION = 2000
MAX_ANSWER = 8000
MAX_NAME = 200


def _text(value: str, what: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise BadRequest(f"{what} must not be blank")
    if len(text) > limit:
        raise BadRequest(f"{what} is longer than {limit} characters")
    return text


class VerifiedAnswers(Flusher):
    def __init__(
        self,
        backend: StateBackend,
        embedder: Embedder,
        *,
        collections: frozenset[str],
        threshold: float | None = None,
        snapshot: Path | None = None,
    ) -> None:
        """``snapshot``: the file a memory deployment keeps its answers in (see store.py)."""
        super().__init__()
        self._store = VerifiedStore(backend, snapshot if backend.name == "memory" else None)
        self._default_threshold = default_threshold(embedder)
        self._matcher = Matcher(embedder, threshold or self._default_threshold)
        self._shared = backend.name != "memory"
        self.collections = collections
        self._policy: CollectionPolicy | None = None
        self._generations: dict[str, int] = {}
        self._scopes: dict[frozenset[str], str] = {}
        self._lock = asyncio.Lock()

    @property
    def threshold(self) -> float:
        return self._matcher.threshold

    def configure(self, *, policy: CollectionPolicy, threshold: float | None) -> None:
        """Who reads which collections, and the match threshold (replaced on config reloads)."""
        self._policy = policy
        self.collections = policy.all
        self._matcher.threshold = threshold or self._default_threshold

    async def start(self) -> None:  # type: ignore[override]
        await self._store.load_snapshot()
        try:
            await self._sync(force=True)
        except BackendUnavailable:
            BACKEND_ERRORS.labels("verified").inc()
        if self._shared:  # other processes' changes: only a shared backend has any
            super().start()

    async def flush(self) -> None:
        try:
            await self._sync()
        except BackendUnavailable:
            BACKEND_ERRORS.labels("verified").inc()

    def collections_for(self, tenant: str, client: str | None = None) -> builtins.list[str]:
        """The collections an asker of this tenant (and client) reads: where an agent's answer to
        that asker may be saved (an adapter offers these; one of them is the usual choice)."""
        readable = self._policy.readable(tenant, client) if self._policy else self.collections
        return sorted(readable)

    # -- the cached path --------------------------------------------------------------------
    def generation(self, collections: frozenset[str]) -> str:
        """The generations of these collections, for the answer cache's scope (no I/O)."""
        known = self._scopes.get(collections)
        if known is None:
            known = ".".join(str(self._generations.get(c, 0)) for c in sorted(collections))
            self._scopes[collections] = known
        return known

    # -- the uncached path ------------------------------------------------------------------
    async def match(self, question: str, collections: frozenset[str]) -> VerifiedAnswer | None:
        """The verified answer for this question within ``collections``, if there is one."""
        try:
            await self._sync()
        except BackendUnavailable:  # the copy in hand still answers
            BACKEND_ERRORS.labels("verified").inc()
        if not self._matcher.has_any(collections):
            return None  # nothing verified here: no redaction, no embedding
        found = await self._matcher.match(redact(question), collections)
        # Served redacted too: an answer saved before answers were redacted, or typed with a
        # customer's number in it, never gives one customer another's personal data.
        return None if found is None else replace(found, answer=redact(found.answer))

    async def _sync(self, *, force: bool = False) -> None:
        generations = await self._store.generations()
        if not force and generations == self._generations:
            return
        async with self._lock:
            if not force and generations == self._generations:
                return  # another caller rebuilt meanwhile
            answers = await self._store.all()
            await self._matcher.rebuild(answers)
            self._generations = generations
            self._scopes = {}

    # -- changes ----------------------------------------------------------------------------
    async def save(
        self,
        question: str,
        answer: str,
        collection: str,
        verified_by: str,
        *,
        actor: str = "-",
        as_written: bool = False,
    ) -> VerifiedAnswer:
        """A new verified answer; ``question`` is redacted before it is stored, and ``answer`` too
        unless ``as_written`` (a person wrote or edited it: the admin API, an agent who changed the
        offered text; it is still redacted when served). ``actor`` names who made the change for
        the audit line (a client or platform, never a person's id)."""
        now = time.time()
        answer = _text(answer, "answer", MAX_ANSWER)
        item = VerifiedAnswer(
            id=secrets.token_hex(8),
            question=redact(_text(question, "question", MAX_QUESTION)),
            answer=answer if as_written else redact(answer),
            collection=self._collection(collection),
            verified_by=_text(verified_by, "verified_by", MAX_NAME),
            created_at=now,
            updated_at=now,
        )
        await self._change(item, {item.collection}, "verified_save", actor)
        return item

    async def edit(
        self,
        answer_id: str,
        *,
        question: str | None = None,
        answer: str | None = None,
        collection: str | None = None,
        verified_by: str | None = None,
        actor: str = "-",
    ) -> VerifiedAnswer:
        old = await self._existing(answer_id)
        item = VerifiedAnswer(
            id=old.id,
            question=old.question if question is None else redact(_text(question, "question", MAX_QUESTION)),
            answer=old.answer if answer is None else _text(answer, "answer", MAX_ANSWER),
            collection=old.collection if collection is None else self._collection(collection),
            verified_by=old.verified_by if verified_by is None else _text(verified_by, "verified_by", MAX_NAME),
            created_at=old.created_at,
            updated_at=time.time(),
            retired=old.retired,
        )
        await self._change(item, {old.collection, item.collection}, "verified_edit", actor)
        return item

    async def retire(self, answer_id: str, *, actor: str = "-") -> VerifiedAnswer:
        """No longer served (kept for the record, and listed as retired)."""
        old = await self._existing(answer_id)
        item = VerifiedAnswer(**{**old.as_dict(), "retired": True, "updated_at": time.time()})
        await self._change(item, {item.collection}, "verified_retire", actor)
        return item

    async def list(
        self, *, collections: frozenset[str] | None = None, include_retired: bool = False
    ) -> builtins.list[VerifiedAnswer]:
        """Newest first."""
        rows = await self._store.all()
        return [
            a
            for a in reversed(rows)
            if (include_retired or not a.retired) and (collections is None or a.collection in collections)
        ]

    async def _existing(self, answer_id: str) -> VerifiedAnswer:
        found = await self._store.get(answer_id) if isinstance(answer_id, str) and answer_id else None
        if found is None:
            raise NotFound("no verified answer with this id")
        return found

    def _collection(self, name: str) -> str:
        if name not in self.collections:
            raise BadRequest(f"unknown collection {name!r}; known: {', '.join(sorted(self.collections))}")
        return name

    async def _change(self, item: VerifiedAnswer, touched: set[str], event: str, actor: str) -> None:
        await self._store.put(item, touched=touched)
        await self._sync(force=True)  # this process serves (or stops serving) it at once
        # Never the question, the answer or a name: the id leads to them on the dashboard.
        fields = {"event": event, "id": item.id, "collection": item.collection, "actor": actor,
                  "verified_by_hash": fingerprint(item.verified_by), "retired": item.retired}  # fmt: skip
        AUDIT.info(event.replace("_", " "), extra=fields)
