"""AskService: the one place a question becomes an answer, for every front door.

limits -> question check -> cache -> retrieval -> model -> cache store -> usage, logs
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import orjson

from core import logs
from core.auth.principal import Principal
from core.auth.service import fingerprint
from core.cache import AnswerCache
from core.config import Settings
from core.errors import BadGateway, BadRequest, HubError, Unavailable, UpstreamTimeout
from core.kb.holder import IndexHolder
from core.kb.retriever import Hit, Retriever
from core.limits import Governor
from core.llm.base import Completion, Provider, ProviderError
from core.llm.prompt import build_prompt, language_of
from core.metrics import ASKS, COST, LLM_CALLS, LLM_SECONDS, LLM_TOKENS, RETRIEVAL_SECONDS
from core.schema import AskRequest, AskResult, Source, Usage
from core.usage import UsageLedger

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
        self,
        settings: Settings,
        *,
        index: IndexHolder,
        retriever: Retriever,
        provider: Provider,
    ) -> None:
        self._settings = settings
        self._index = index
        self._retriever = retriever
        self._provider = provider

    def use(self, settings: Settings, *, governor: Governor, cache: AnswerCache, usage: UsageLedger) -> None:
        """The policies in force (replaced as a whole when the config changes)."""
        self._settings = settings
        self._governor = governor
        self._cache = cache
        self._usage = usage

    async def ask(self, request: AskRequest, principal: Principal | None = None) -> AskResult:
        """Answer one question. ``principal`` is the authenticated caller of an HTTP route;
        adapters leave it out and the request's own client, tenant and user are used."""
        started = time.perf_counter()
        outcome = "error"
        admission = None
        try:
            who = principal or Principal(request.client, request.tenant, request.user, frozenset({"ask"}))
            admission = await self._governor.admit(who, request.platform)
            result = await self._answer(request, started)
            outcome = "cached" if result.cached else result.outcome
            return replace(result, admission=admission)
        except HubError as exc:
            outcome = exc.type
            if admission is not None:  # limit headers go on every admitted request's response
                for name, value in admission.headers().items():
                    exc.headers.setdefault(name, value)
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
        route = f"{self._provider.model}|k{top_k}"
        key = AnswerCache.key(question, index.version, route)
        hit = await self._cache.get(key, tenant=request.tenant, question=question)
        if hit is not None:
            return await self._finish(request, question, started, cached=orjson.loads(hit))

        t0 = time.perf_counter()
        hits = await self._retriever.search(index, question, top_k)
        RETRIEVAL_SECONDS.observe(time.perf_counter() - t0)
        relevant = [h for h in hits if h.score >= settings.retrieval.min_score]
        answer, model, usage, outcome = NO_KNOWLEDGE[language_of(question)], "none", Usage(), "no_knowledge"
        if relevant:
            completion = await self._complete(request, question, relevant)
            if completion.text:
                cost = self._usage.cost(
                    completion.model, completion.prompt_tokens, completion.completion_tokens
                )
                answer, model, outcome = completion.text, completion.model, "answered"
                usage = Usage(completion.prompt_tokens, completion.completion_tokens, cost)
        sources = (
            [Source(h.chunk.id, h.chunk.title, h.chunk.text, h.score) for h in relevant]
            if model != "none"
            else []
        )
        fresh = {
            "answer": answer,
            "model": model,
            "outcome": outcome,
            "sources": [s.as_dict() for s in sources],
        }
        await self._cache.put(key, orjson.dumps(fresh), tenant=request.tenant, question=question)
        return await self._finish(request, question, started, fresh=fresh, usage=usage)

    async def _complete(self, request: AskRequest, question: str, relevant: list[Hit]) -> Completion:
        settings = self._settings
        provider = self._provider
        temperature = settings.llm.temperature if request.temperature is None else request.temperature
        t1 = time.perf_counter()
        try:
            completion = await provider.complete(
                build_prompt(question, relevant), temperature=temperature, max_tokens=settings.llm.max_tokens
            )
        except ProviderError as exc:
            LLM_CALLS.labels(provider.model, exc.kind).inc()
            raise _http_error(exc) from None
        LLM_SECONDS.labels(provider.model).observe(time.perf_counter() - t1)
        LLM_CALLS.labels(provider.model, "ok").inc()
        LLM_TOKENS.labels(completion.model, "prompt").inc(completion.prompt_tokens)
        LLM_TOKENS.labels(completion.model, "completion").inc(completion.completion_tokens)
        await self._governor.charge_tokens(
            request.tenant, completion.prompt_tokens + completion.completion_tokens
        )
        return completion

    async def _finish(
        self,
        request: AskRequest,
        question: str,
        started: float,
        *,
        fresh: dict | None = None,  # type: ignore[type-arg]
        cached: dict | None = None,  # type: ignore[type-arg]
        usage: Usage | None = None,
    ) -> AskResult:
        usage = usage or Usage()
        data = fresh if fresh is not None else cached
        assert data is not None
        is_cached = cached is not None
        model = data["model"]
        if model != "none":
            COST.labels(self._governor.tenant_label(request.tenant), model).inc(usage.cost_usd)
            self._usage.record(
                tenant=request.tenant,
                client=request.client,
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost=usage.cost_usd,
                cached=is_cached,
            )
        sources = [Source(**s) for s in data["sources"]]
        latency_ms = (time.perf_counter() - started) * 1000
        logs.query(
            {
                "request_id": request.request_id,
                "tenant": request.tenant,
                "client": request.client,
                "platform": request.platform,
                "user_hash": fingerprint(request.user),
                "question_chars": len(question),
                "model": model,
                "outcome": data["outcome"],
                "sources": [s.id for s in sources],
                "latency_ms": round(latency_ms, 1),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": usage.cost_usd,
                "cached": is_cached,
            }
        )
        return AskResult(
            question=question,
            answer=data["answer"],
            sources=sources,
            model=model,
            cached=is_cached,
            usage=usage,
            request_id=request.request_id,
            outcome=data["outcome"],
            latency_ms=latency_ms,
        )


def _http_error(exc: ProviderError) -> Exception:
    if exc.kind == "timeout":
        return UpstreamTimeout("the model did not answer in time")
    if exc.kind in ("bad_response", "client"):
        return BadGateway("the model gave an unusable reply")
    return Unavailable("the model is unavailable right now", retry_after=exc.retry_after or 5)
