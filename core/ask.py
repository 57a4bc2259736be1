"""AskService: the one place a question becomes an answer, for every front door.

    limits -> question check -> route -> cache -> retrieval -> model -> cache, usage, logs

``ask`` returns the finished AskResult; ``stream`` yields the answer's text as it is
produced and the AskResult last. Both run the same pipeline.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from core import logs
from core.auth.principal import Principal
from core.auth.service import fingerprint
from core.cache import AnswerCache
from core.config import Settings
from core.conversation import Conversations
from core.errors import BadRequest, HubError, Unavailable
from core.kb.holder import IndexHolder
from core.kb.retriever import Hit, Retriever
from core.limits import Governor
from core.llm.base import Completion, Message
from core.llm.gateway import ModelGateway
from core.llm.prompt import build_prompt, language_of
from core.messages import NO_KNOWLEDGE
from core.metrics import ASKS, COST, RETRIEVAL_SECONDS, TENANT_TOKENS
from core.pii import redact
from core.schema import Admission, AskRequest, AskResult, Source, Usage
from core.stats import Stats
from core.usage import UsageLedger


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the answer as it streams."""

    text: str


CHAT_PLATFORMS = frozenset({"slack", "line", "discord"})


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
        models: ModelGateway,
        conversations: Conversations,
        stats: Stats,
    ) -> None:
        self._settings = settings
        self._index = index
        self._retriever = retriever
        self._models = models
        self._conversations = conversations
        self._stats = stats

    def use(self, settings: Settings, *, governor: Governor, cache: AnswerCache, usage: UsageLedger) -> None:
        """The policies in force (replaced as a whole when the config changes)."""
        self._settings = settings
        self._governor = governor
        self._cache = cache
        self._usage = usage

    async def ask(self, request: AskRequest, principal: Principal | None = None) -> AskResult:
        """Answer one question. ``principal`` is the authenticated caller of an HTTP route;
        adapters leave it out and the request's own client, tenant and user are used."""
        async for event in self._run(request, principal, streaming=False):
            if isinstance(event, AskResult):
                return event
        raise AssertionError("the pipeline always ends with a result")

    def stream(
        self,
        request: AskRequest,
        principal: Principal | None = None,
        on_admission: Callable[[Admission], None] | None = None,
    ) -> AsyncIterator[Delta | AskResult]:
        """The answer's text as it grows (Delta), then the AskResult. ``on_admission`` hears
        the limits' verdict before the first piece (an HTTP route's headers need it)."""
        return self._run(request, principal, streaming=True, on_admission=on_admission)

    async def _run(
        self,
        request: AskRequest,
        principal: Principal | None,
        *,
        streaming: bool,
        on_admission: Callable[[Admission], None] | None = None,
    ) -> AsyncIterator[Delta | AskResult]:
        started = time.perf_counter()
        outcome = "error"
        admission = None
        try:
            who = principal or Principal(request.client, request.tenant, request.user, frozenset({"ask"}))
            # The audit's route: the chat platform, or the HTTP route the caller used.
            admission = await self._governor.admit(
                who, request.platform if request.platform in CHAT_PLATFORMS else "/ask"
            )
            if on_admission is not None:
                on_admission(admission)
            async for event in self._answer(request, started, streaming):
                if isinstance(event, AskResult):
                    outcome = "cached" if event.cached else event.outcome
                    event = replace(event, admission=admission)
                    self._record(request, event)
                yield event
        except HubError as exc:
            outcome = exc.type
            self._stats.failed(limited=exc.type == "rate_limited", error=exc.status >= 500)
            if admission is not None:  # limit headers go on every admitted request's response
                for name, value in admission.headers().items():
                    exc.headers.setdefault(name, value)
            raise
        finally:
            ASKS.labels(request.platform, outcome).inc()

    def _record(self, request: AskRequest, result: AskResult) -> None:
        row = {"request_id": request.request_id, "tenant": request.tenant, "platform": request.platform,
               "question": result.question, "model": result.model, "latency_ms": round(result.latency_ms, 1),
               "cached": result.cached, "outcome": result.outcome}  # fmt: skip
        tokens = result.usage.prompt_tokens + result.usage.completion_tokens
        self._stats.answered(tenant=request.tenant, latency_ms=result.latency_ms, tokens=tokens,
                             cost=result.usage.cost_usd, cached=result.cached, entry=row)  # fmt: skip

    async def _answer(self, request: AskRequest, started: float, streaming: bool) -> AsyncIterator[Delta | AskResult]:
        settings = self._settings
        question = clean_question(request.question, settings.requests.max_question_chars)
        index = self._index.current
        if index is None:
            raise Unavailable(self._index.error or "the knowledge base is not loaded yet", retry_after=5)
        top_k = request.top_k or settings.retrieval.top_k
        history = await self._conversations.history(request.conversation_id)
        # Rules look at the question; earlier turns go into the prompt, so personal data in
        # any of them routes locally too.
        route = self._models.route(
            question,
            earlier=" ".join(f"{t.question} {t.answer}" for t in history),
            tenant=request.tenant,
            platform=request.platform,
            tenant_label=self._governor.tenant_label(request.tenant),
        )
        if route.pii:
            self._stats.pii()
        key = AnswerCache.key(question, index.version, f"{route.name}|k{top_k}")
        # A follow-up depends on its conversation: never answered from (or into) the plain cache.
        hit = None if history else await self._cache.get(key, tenant=request.tenant, question=question)
        if hit is not None:
            cached = orjson.loads(hit)
            if streaming:
                yield Delta(cached["answer"])
            await self._conversations.add(request.conversation_id, question, cached["answer"])
            yield self._finish(request, question, started, cached, Usage(), cached=True, route=route.name)
            return

        t0 = time.perf_counter()
        context = history[-1].question if history else ""
        hits = await self._retriever.search(index, question, top_k, context=context, route=route, history=history)
        RETRIEVAL_SECONDS.observe(time.perf_counter() - t0)
        relevant = [h for h in hits if h.score >= settings.retrieval.min_score]
        completion: Completion | None = None
        if relevant:
            turns = [m for t in history for m in (Message("user", t.question), Message("assistant", t.answer))]
            prompt = build_prompt(question, relevant, turns)
            temperature = settings.llm.temperature if request.temperature is None else request.temperature
            # Chat platforms' events were acknowledged already: their answers may wait for a busy model.
            patient = request.platform in CHAT_PLATFORMS
            if streaming:
                async for part in self._models.stream(
                    route, prompt, temperature, settings.llm.max_tokens, patient=patient
                ):
                    if isinstance(part, str):
                        yield Delta(part)
                    else:
                        completion = part
            else:
                completion = await self._models.complete(
                    route, prompt, temperature, settings.llm.max_tokens, patient=patient
                )
        data, usage = self._outcome(question, relevant, completion)
        if streaming and data["model"] == "none":
            yield Delta(data["answer"])
        if completion is not None:
            await self._governor.charge_tokens(request.tenant, completion.prompt_tokens + completion.completion_tokens)
        if not history:
            await self._cache.put(key, orjson.dumps(data), tenant=request.tenant, question=question)
        await self._conversations.add(request.conversation_id, question, data["answer"])
        yield self._finish(request, question, started, data, usage, cached=False, route=route.name)

    def _outcome(
        self, question: str, relevant: list[Hit], completion: Completion | None
    ) -> tuple[dict[str, Any], Usage]:
        if completion is None or not completion.text:
            answer = NO_KNOWLEDGE[language_of(question)]
            return {"answer": answer, "model": "none", "outcome": "no_knowledge", "sources": []}, Usage()
        cost = self._usage.cost(completion.model, completion.prompt_tokens, completion.completion_tokens)
        sources = [Source(h.chunk.id, h.chunk.title, h.chunk.text, h.score).as_dict() for h in relevant]
        data = {
            "answer": completion.text,
            "model": completion.model,
            "outcome": "answered",
            "sources": sources,
        }
        return data, Usage(completion.prompt_tokens, completion.completion_tokens, cost)

    def _finish(
        self,
        request: AskRequest,
        question: str,
        started: float,
        data: dict[str, Any],
        usage: Usage,
        *,
        cached: bool,
        route: str,
    ) -> AskResult:
        model = data["model"]
        if model != "none":
            tenant = self._governor.tenant_label(request.tenant)
            COST.labels(tenant, model).inc(usage.cost_usd)
            TENANT_TOKENS.labels(tenant, model).inc(usage.prompt_tokens + usage.completion_tokens)
            self._usage.record(
                tenant=request.tenant,
                client=request.client,
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost=usage.cost_usd,
                cached=cached,
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
                "question": redact(question),
                "route": route,
                "model": model,
                "outcome": data["outcome"],
                "sources": [s.id for s in sources],
                "latency_ms": round(latency_ms, 1),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": usage.cost_usd,
                "cached": cached,
            }
        )
        return AskResult(
            question=question,
            answer=data["answer"],
            sources=sources,
            model=model,
            cached=cached,
            usage=usage,
            request_id=request.request_id,
            outcome=data["outcome"],
            latency_ms=latency_ms,
        )
