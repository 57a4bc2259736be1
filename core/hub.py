"""The hub: everything one process shares — index, models, limits, cache, usage.

One Hub per process; the HTTP app and every adapter running in the process use it, which
is how they share one cache, one set of limits and one set of metrics (and, with Redis,
share them with every other process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.accounting import Accounting
from core.ask import AskService
from core.auth import Authenticator, walls
from core.cache import AnswerCache
from core.chat import ChatService
from core.config import Settings
from core.conversation import Conversations
from core.dedupe import EventLedger
from core.embeddings import EmbeddingService
from core.feedback import FeedbackStore
from core.handoff import HandoffService
from core.inbox import Inbox
from core.inbox.threads import ThreadMarkers
from core.jobs import make_queue
from core.kb.embedders import make_embedder
from core.kb.holder import IndexHolder
from core.kb.retriever import Retriever
from core.limits import Governor
from core.llm.gateway import ModelGateway
from core.llm.rewrite import RewritingSearch
from core.metrics import BACKEND_UP
from core.openai.response_store import ResponseStore
from core.openai.service import ResponsesService
from core.portal.door import PortalDoor
from core.portal.events import ConversationEvents
from core.reload import ConfigWatcher
from core.sources.schedule import SourceSchedule
from core.sources.sync import SourceSync
from core.state import BackendUnavailable, make_backend
from core.stats import Stats
from core.tracing import Tracing
from core.usage import UsageLedger
from core.verified import VerifiedAnswers
from core.verified.store import snapshot_path

log = logging.getLogger("askhub.hub")


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracing = Tracing(settings.otel_env)  # off (no provider, no exporter) unless OTEL_* asks
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self.backend = make_backend(settings.redis_url)
        self.embedder = make_embedder(settings.embeddings, api_key=key, base_url=settings.openai_base_url)
        self.index = IndexHolder(settings, self.embedder)
        self.retriever = Retriever.from_settings(self.embedder, settings.retrieval)
        self.models = ModelGateway(settings, self.embedder)
        self.conversations = Conversations(settings.conversation, self.backend)
        self.stats = Stats(self.backend)
        self.feedback = FeedbackStore(self.backend, self.stats)
        self.accounting = Accounting(self.stats)
        # People's answers, served before retrieval; kept in a file when there is no Redis.
        self.verified = VerifiedAnswers(self.backend, self.embedder, collections=frozenset(settings.collection_dirs()),
                                        threshold=settings.verified.threshold,
                                        snapshot=snapshot_path(settings))  # fmt: skip
        self.asker = AskService(
            settings,
            index=self.index,
            retriever=RewritingSearch(self.retriever, self.models, settings.retrieval, self.accounting),
            models=self.models,
            conversations=self.conversations,
            feedback=self.feedback,
            accounting=self.accounting,
            verified=self.verified,
        )
        self.chat = ChatService(
            index=self.index, retriever=self.retriever, models=self.models, accounting=self.accounting
        )
        self.response_store = ResponseStore(self.backend, settings.responses)
        self.responses = ResponsesService(self.chat, self.response_store, self.models)
        self.embeddings = EmbeddingService(models=self.models, accounting=self.accounting)
        self.usage = UsageLedger(settings, self.backend)
        self.events = EventLedger(self.backend)
        self.jobs = make_queue(settings.redis_url, self.events, workers=settings.queue.workers,
                               reclaim_after_sec=settings.queue.reclaim_after_sec, tracing=self.tracing)  # fmt: skip
        # What adapters use (core.inbox.door.Door).
        self.inbox = Inbox(self.events, self.jobs, self.backend, self.tracing)
        self.threads = ThreadMarkers(self.backend)
        self.handoff = HandoffService(settings, self.backend, models=self.models, accounting=self.accounting,
                                      conversations=self.conversations)  # fmt: skip
        # The portal as a customer door: its conversations' events feed GET /conversations/{id}/events.
        self.portal = PortalDoor(self.handoff, ConversationEvents(self.backend), self.accounting)
        # Sources synced on their schedule: by this process without Redis, else by the worker.
        self.sources = SourceSchedule(SourceSync(settings, self.embedder, backend=self.backend))
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self.apply(settings)
        self.watcher = ConfigWatcher(settings, self._apply_from_thread)
        self._loop: asyncio.AbstractEventLoop | None = None

    def apply(self, settings: Settings) -> None:
        """(Re)build the parts a config change may touch; their state lives in the backend."""
        self.settings = settings
        self.auth = Authenticator(settings)
        self.governor = Governor(settings, self.backend)
        self.cache = AnswerCache(settings.cache, self.backend)
        self.usage.configure(settings)
        self.models.configure(settings)
        self.accounting.use(self.governor, self.usage)
        self.asker.use(settings, cache=self.cache, collections=self.auth.collections)
        self.verified.configure(policy=self.auth.collections, threshold=settings.verified.threshold)
        self.chat.use(settings)
        self.response_store.use(settings.responses)
        self.embeddings.use(settings)
        if hasattr(self, "handoff"):
            self.handoff.configure(settings)

    def _apply_from_thread(self, settings: Settings) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.apply, settings)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        walls.log_startup(self.settings)  # tenants that read nothing, platforms whose events would be unplaced
        with contextlib.suppress(BackendUnavailable):
            await self.backend.ping()  # sets hub_backend_up (the Redis backend keeps it current)
        if self.backend.name == "memory":
            BACKEND_UP.set(1)
        self.watcher.start()
        self.usage.start()
        self.stats.start()
        self.feedback.start()
        await self.verified.start()
        self.jobs.seal()  # every job kind is declared by now (adapters declare theirs when loaded)
        if self.settings.queue.consume or not self.settings.redis_url:
            self.jobs.start()
        self.handoff.start()  # the idle sweeper (every process runs one; each close is claimed once)
        await self.index.start()
        await self.retriever.warm()
        if not self.settings.redis_url:
            self.sources.start()

    def on_close(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` at shutdown, after queued work is done (adapters close their clients)."""
        self._on_close.append(hook)

    async def close(self) -> None:
        await self.sources.close()
        await self.watcher.close()
        await self.handoff.close()
        await self.jobs.close(self.settings.queue.drain_sec)
        for hook in self._on_close:
            try:
                await hook()
            except Exception as exc:
                log.warning("shutdown hook failed", extra={"exc": type(exc).__name__})
        await self.usage.close()
        await self.stats.close()
        await self.feedback.close()
        await self.verified.close()
        await self.index.close()
        await self.models.aclose()
        await self.chat.aclose()
        await self.embeddings.aclose()
        await self.backend.close()
        await asyncio.to_thread(self.tracing.shutdown)  # the last spans are exported

    async def readiness(self) -> list[str]:
        """What keeps this process from answering (for /readyz); empty when ready."""
        problems = []
        if self.index.current is None:
            problems.append(f"index: {self.index.error or 'not loaded'}")
        try:
            await self.backend.ping()
            BACKEND_UP.set(1)
        except BackendUnavailable as exc:
            BACKEND_UP.set(0)
            problems.append(f"shared state ({self.backend.name}): {exc}")
        problems += await self.models.unreachable()
        return problems
