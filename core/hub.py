"""The hub: everything one process shares — index, retriever, models, the ask service.

One Hub per process; the HTTP app and every adapter running in the process use it, which
is how they share one cache, one set of limits and one set of metrics.
"""

from __future__ import annotations

from core.ask import AskService
from core.config import Settings
from core.kb.embedders import make_embedder
from core.kb.holder import IndexHolder
from core.kb.retriever import Retriever
from core.llm.base import Provider
from core.llm.extractive import ExtractiveProvider
from core.llm.openai_provider import OpenAIProvider
from core.metrics import INDEX_CHUNKS, INDEX_VERSION


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self.embedder = make_embedder(settings.embeddings, api_key=key, base_url=settings.openai_base_url)
        self.index = IndexHolder(settings, self.embedder)
        self.retriever = Retriever(self.embedder, lexical_weight=settings.retrieval.lexical_weight)
        self.provider = _provider(settings, key)
        self.asker = AskService(settings, self.index, self.retriever, self.provider)

    async def start(self) -> None:
        await self.index.start()
        if self.index.current is not None:
            INDEX_CHUNKS.set(self.index.current.size)
            INDEX_VERSION.set(self.index.current.version)

    async def close(self) -> None:
        await self.index.close()
        await self.provider.aclose()

    async def readiness(self) -> list[str]:
        """What keeps this process from answering (for /readyz); empty when ready."""
        problems = []
        if self.index.current is None:
            problems.append(f"index: {self.index.error or 'not loaded'}")
        problem = await self.provider.ping()
        if problem:
            problems.append(f"model {self.provider.model}: {problem}")
        return problems


def _provider(settings: Settings, key: str | None) -> Provider:
    if key or settings.openai_base_url:
        return OpenAIProvider(
            model=settings.chat_model,
            api_key=key,
            base_url=settings.openai_base_url,
            timeout=settings.llm.timeout_sec,
        )
    return ExtractiveProvider()
