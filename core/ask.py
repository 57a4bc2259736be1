"""AskService: the one place a question becomes an answer, for every front door."""

from __future__ import annotations

import hashlib
import logging
import time

from core.config import Settings
from core.errors import BadGateway, BadRequest, Unavailable, UpstreamTimeout
from core.kb.holder import IndexHolder
from core.kb.retriever import Retriever
from core.llm.base import Provider, ProviderError
from core.llm.prompt import build_prompt, language_of
from core.logs import QUERY
from core.metrics import ASKS, COST, LLM_CALLS, LLM_SECONDS, LLM_TOKENS, RETRIEVAL_SECONDS
from core.schema import AskRequest, AskResult, Source, Usage

log = logging.getLogger("askhub.ask")

NO_KNOWLEDGE = {
    "zh-TW": "抱歉，知識庫裡找不到與這個問題相關的資料。可以換個說法再問一次，或洽詢負責該業務的部門。",
    "en": "Sorry, I could not find anything about that in the knowledge base. Try asking in other words, "
    "or ask the team that owns the topic.",
}


def clean_question(text: str, max_chars: int) -> str:
    question = " ".join(text.split())
    if not question:
        raise BadRequest("question must not be blank")
    if len(question) > max_chars:
        raise BadRequest(f"question is longer than {max_chars} characters")
    return question


class AskService:
    def __init__(
        self, settings: Settings, index: IndexHolder, retriever: Retriever, provider: Provider
    ) -> None:
        self._settings = settings
        self._index = index
        self._retriever = retriever
        self._provider = provider

    async def ask(self, request: AskRequest) -> AskResult:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self._answer(request, started)
            outcome = result.outcome
            return result
        except Exception as exc:
            outcome = getattr(exc, "type", "error")
            raise
        finally:
            ASKS.labels(request.platform, outcome).inc()

    async def _answer(self, request: AskRequest, started: float) -> AskResult:
        settings = self._settings
        question = clean_question(request.question, settings.requests.max_question_chars)
        index = self._index.current
        if index is None:
            raise Unavailable(self._index.error or "the knowledge base is not loaded yet", retry_after=5)
        top_k = request.top_k or settings.retrieval.top_k
        t0 = time.perf_counter()
        hits = await self._retriever.search(index, question, top_k)
        RETRIEVAL_SECONDS.observe(time.perf_counter() - t0)
        relevant = [h for h in hits if h.score >= settings.retrieval.min_score]
        language = language_of(question)
        if not relevant:
            return self._finish(
                request, question, NO_KNOWLEDGE[language], [], "none", Usage(), started, "no_knowledge"
            )
        prompt = build_prompt(question, relevant)
        temperature = settings.llm.temperature if request.temperature is None else request.temperature
        provider = self._provider
        t1 = time.perf_counter()
        try:
            completion = await provider.complete(
                prompt, temperature=temperature, max_tokens=settings.llm.max_tokens
            )
        except ProviderError as exc:
            LLM_CALLS.labels(provider.model, exc.kind).inc()
            raise _http_error(exc) from None
        LLM_SECONDS.labels(provider.model).observe(time.perf_counter() - t1)
        LLM_CALLS.labels(provider.model, "ok").inc()
        if not completion.text:
            return self._finish(
                request, question, NO_KNOWLEDGE[language], [], "none", Usage(), started, "no_knowledge"
            )
        LLM_TOKENS.labels(completion.model, "prompt").inc(completion.prompt_tokens)
        LLM_TOKENS.labels(completion.model, "completion").inc(completion.completion_tokens)
        usage = Usage(completion.prompt_tokens, completion.completion_tokens, 0.0)
        COST.labels(request.tenant, completion.model).inc(usage.cost_usd)
        sources = [Source(h.chunk.id, h.chunk.title, h.chunk.text, h.score) for h in relevant]
        return self._finish(
            request, question, completion.text, sources, completion.model, usage, started, "answered"
        )

    def _finish(
        self,
        request: AskRequest,
        question: str,
        answer: str,
        sources: list[Source],
        model: str,
        usage: Usage,
        started: float,
        outcome: str,
    ) -> AskResult:
        latency_ms = (time.perf_counter() - started) * 1000
        QUERY.info(
            "ask",
            extra={
                "request_id": request.request_id,
                "tenant": request.tenant,
                "client": request.client,
                "platform": request.platform,
                "user_hash": hashlib.sha256(request.user.encode()).hexdigest()[:16],
                "question_chars": len(question),
                "model": model,
                "outcome": outcome,
                "sources": [s.id for s in sources],
                "latency_ms": round(latency_ms, 1),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": usage.cost_usd,
                "cached": False,
            },
        )
        return AskResult(
            question=question,
            answer=answer,
            sources=sources,
            model=model,
            cached=False,
            usage=usage,
            request_id=request.request_id,
            outcome=outcome,
            latency_ms=latency_ms,
        )


def _http_error(exc: ProviderError) -> Exception:
    if exc.kind == "timeout":
        return UpstreamTimeout("the model did not answer in time")
    if exc.kind in ("bad_response", "client"):
        return BadGateway("the model gave an unusable reply")
    return Unavailable("the model is unavailable right now", retry_after=exc.retry_after or 5)
