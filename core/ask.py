"""AskService: the one place a question becomes an answer, for every front door.

    limits -> question check -> route -> cache -> retrieval -> model -> cache, usage, logs

``ask`` returns the finished AskResult; ``stream`` yields the answer's text as it is
produced and the AskResult last. Both run the same pipeline. When the request is traced,
admission, cache, retrieval and each model call are spans under the question's span (the
HTTP request, or the platform event's answer), which gets the outcome's attributes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from core import logs, privacy
from core.accounting import Accounting
from core.auth.collections import CollectionPolicy
from core.auth.principal import Principal
from core.auth.service import fingerprint
from core.cache import AnswerCache
from core.config import Settings
from core.conversation import Conversations
from core.errors import BadRequest, HubError, Unavailable
from core.feedback import FeedbackStore
from core.kb.holder import IndexHolder
from core.kb.retriever import Hit, Retriever
from core.llm.base import Completion, Message
from core.llm.gateway import ModelGateway
from core.llm.prompt import build_prompt, is_no_answer, language_of, may_be_no_answer
from core.llm.routing import model_decides
from core.messages import NO_KNOWLEDGE
from core.metrics import ASKS, RETRIEVAL_SECONDS, SOURCES, VERIFIED_SERVED
from core.pii import redact
from core.schema import Admission, AskRequest, AskResult, Source, Usage
from core.tracing import annotate, span, trace_id
from core.verified import VerifiedAnswer, VerifiedAnswers


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the answer as it streams."""

    text: str


CHAT_PLATFORMS = frozenset({"slack", "line", "discord", "whatsapp", "telegram", "teams"})


def clean_question(text: str, max_chars: int) -> str:
    question = " ".join(text.split())
    if not question:
        raise BadRequest("question must not be blank")
    if len(question) > max_chars:
        raise BadRequest(f"question is longer than {max_chars} characters")
    return question


def conversation_key(request: AskRequest, who: Principal) -> str | None:
    """Whose conversation this is: a platform thread belongs to its platform and tenant, any
    other conversation to its asker (tenant, client, user). The same id sent by someone else
    names a different, empty conversation."""
    if not request.conversation_id:
        return None
    if request.platform in CHAT_PLATFORMS:
        owner = f"{request.platform}\x1f{who.tenant}"
    else:
        owner = f"{who.tenant}\x1f{who.client}\x1f{who.user}"
    return f"{fingerprint(owner)}:{request.conversation_id}"


class AskService:
    def __init__(
        self,
        settings: Settings,
        *,
        index: IndexHolder,
        retriever: Retriever,
        models: ModelGateway,
        conversations: Conversations,
        feedback: FeedbackStore,
        accounting: Accounting,
        verified: VerifiedAnswers,
    ) -> None:
        self._settings = settings
        self._index = index
        self._retriever = retriever
        self._models = models
        self._conversations = conversations
        self._feedback = feedback
        self._accounting = accounting
        self._verified = verified
        self._stats = accounting.stats

    def use(self, settings: Settings, *, cache: AnswerCache, collections: CollectionPolicy) -> None:
        """The policies in force (replaced as a whole when the config changes)."""
        self._settings = settings
        self._cache = cache
        self._collections = collections

    async def ask(self, request: AskRequest, principal: Principal | None = None) -> AskResult:
        """Answer one question. ``principal`` is the authenticated caller of an HTTP route;
        adapters leave it out and the request's own client, tenant and user are used."""
        # Closed here, not left to the garbage collector's finalizer (a loop wake-up per request).
        async with contextlib.aclosing(self._run(request, principal, streaming=False)) as events:
            async for event in events:
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
            who = self._asker(request, principal)
            # The audit's route: the chat platform, or the HTTP route the caller used.
            with span("admission", **{"askhub.tenant": who.tenant}):
                admission = await self._accounting.admit(
                    who, request.platform if request.platform in CHAT_PLATFORMS else "/ask"
                )
            if on_admission is not None:
                on_admission(admission)
            async for event in self._answer(request, who, started, streaming):
                if isinstance(event, AskResult):
                    outcome = "cached" if event.cached else event.outcome
                    event = replace(event, admission=admission)
                    self._record(request, event)
                    self._feedback.answered(request.request_id, tenant=who.tenant, client=who.client)
                yield event
        except HubError as exc:
            outcome = exc.type
            if admission is not None:  # a refusal by the limits was counted as it was raised
                self._accounting.failed(exc)
                # Limit headers go on every admitted request's response.
                for name, value in admission.headers().items():
                    exc.headers.setdefault(name, value)
            raise
        finally:
            ASKS.labels(request.platform, outcome).inc()

    def _asker(self, request: AskRequest, principal: Principal | None) -> Principal:
        """The caller, with the collections it may read resolved once for the whole request.
        An adapter's request stands for its platform client and the tenant its map chose."""
        if principal is not None and principal.collections is not None:
            return principal
        who = principal or Principal(request.client, request.tenant, request.user, frozenset({"ask"}))
        return replace(who, collections=self._collections.readable(who.tenant, who.client))

    def _record(self, request: AskRequest, result: AskResult) -> None:
        row = {"request_id": request.request_id, "tenant": request.tenant, "platform": request.platform,
               "question": result.question, "model": result.model, "latency_ms": round(result.latency_ms, 1),
               "cached": result.cached, "outcome": result.outcome}  # fmt: skip
        tokens = result.usage.prompt_tokens + result.usage.completion_tokens
        self._stats.answered(tenant=request.tenant, latency_ms=result.latency_ms, tokens=tokens,
                             cost=result.usage.cost_usd, cached=result.cached, entry=row)  # fmt: skip

    async def _answer(
        self, request: AskRequest, who: Principal, started: float, streaming: bool
    ) -> AsyncIterator[Delta | AskResult]:
        settings = self._settings
        readable = who.collections or frozenset()
        question = clean_question(request.question, settings.requests.max_question_chars)
        index = self._index.current
        if index is None:
            raise Unavailable(self._index.error or "the knowledge base is not loaded yet", retry_after=5)
        top_k = request.top_k or settings.retrieval.top_k
        conversation = conversation_key(request, who)
        history = await self._conversations.history(conversation)
        # Rules look at the question; earlier turns go into the prompt, so personal data in
        # any of them routes locally too.
        route = self._models.route(
            question,
            earlier=" ".join(f"{t.question} {t.answer}" for t in history),
            tenant=request.tenant,
            platform=request.platform,
            tenant_label=self._accounting.tenant_label(request.tenant),
        )
        if route.pii:
            self._stats.pii()
        temperature = settings.llm.temperature if request.temperature is None else request.temperature
        # Everything that changes the answer is in its cache scope: who may read what, the route,
        # how many passages, the temperature — and the generation of the verified answers of
        # those collections, so that saving, editing or retiring one leaves no stale cached answer.
        # Askers with the same scope share entries.
        scope = AnswerCache.scope(readable, route.name, top_k, temperature, self._verified.generation(readable))
        key = AnswerCache.key(question, index.version, scope)
        # A follow-up depends on its conversation: never answered from (or into) the plain cache.
        with span("cache.lookup", **{"askhub.cache.skipped": bool(history)}) as lookup:
            hit = None if history else await self._cache.get(key, tenant=request.tenant, scope=scope, question=question)
            lookup.set_attribute("askhub.cache.hit", hit is not None)
        if hit is not None:
            cached = orjson.loads(hit)
            if streaming:
                yield Delta(cached["answer"])
            await self._conversations.add(conversation, question, cached["answer"])
            yield self._finish(request, question, started, cached, Usage(), cached=True, route=route.name)
            return

        # A person's answer to this question (within the asker's collections) beats retrieval.
        # The question's personal-data decision (route.pii) holds for everything that embeds it.
        with span("verified.match"), privacy.decided(route.pii):
            found = await self._verified.match(question, readable)
        if found is not None:
            data = self._verified_data(found)
            if streaming:
                yield Delta(data["answer"])
            if not history:
                with span("cache.store"):
                    await self._cache.put(key, orjson.dumps(data), tenant=request.tenant, scope=scope,
                                          question=question)  # fmt: skip
            await self._conversations.add(conversation, question, data["answer"])
            yield self._finish(request, question, started, data, Usage(), cached=False, route=route.name)
            return

        t0 = time.perf_counter()
        context = history[-1].question if history else ""
        # A chat model gets the best passages unless there is no evidence at all, and decides.
        decides = model_decides(route)
        with (
            span("retrieval", **{"askhub.top_k": top_k, "askhub.collections": readable}) as search,
            privacy.decided(route.pii),
        ):
            hits = await self._retriever.search(
                index, question, top_k, context=context, collections=readable, abstain=not decides,
                route=route, history=history, asker=who,
            )  # fmt: skip
            search.set_attribute("askhub.hits", len(hits))
        RETRIEVAL_SECONDS.observe(time.perf_counter() - t0)
        relevant = hits if decides else [h for h in hits if h.score >= settings.retrieval.min_score]
        completion: Completion | None = None
        if relevant:
            turns = [m for t in history for m in (Message("user", t.question), Message("assistant", t.answer))]
            prompt = build_prompt(question, relevant, turns)
            # Chat platforms' events were acknowledged already: their answers may wait for a busy model.
            patient = request.platform in CHAT_PLATFORMS
            if streaming:
                # The reply's start is held back while it may still be the "no answer" signal, which
                # never reaches the asker; after the signal the rest is read (for its usage), not shown.
                held: str | None = ""
                declined = False
                async for part in self._models.stream(
                    route, prompt, temperature, settings.llm.max_tokens, patient=patient
                ):
                    if not isinstance(part, str):
                        completion = part
                    elif held is None:
                        if not declined:
                            yield Delta(part)
                    elif not may_be_no_answer(held := held + part):
                        declined = is_no_answer(held)
                        if not declined:
                            yield Delta(held)
                        held = None
                if held and not is_no_answer(held):
                    yield Delta(held)  # a reply too short to tell apart until it ended ("No.")
            else:
                completion = await self._models.complete(
                    route, prompt, temperature, settings.llm.max_tokens, patient=patient
                )
        data, usage = self._outcome(question, relevant, completion)
        if streaming and data["outcome"] == "no_knowledge":
            yield Delta(data["answer"])
        if completion is not None:
            await self._accounting.charge_tokens(
                request.tenant, completion.prompt_tokens + completion.completion_tokens
            )
        if not history:
            with span("cache.store"):
                await self._cache.put(key, orjson.dumps(data), tenant=request.tenant, scope=scope, question=question)
        await self._conversations.add(conversation, question, data["answer"])
        yield self._finish(request, question, started, data, usage, cached=False, route=route.name)

    @staticmethod
    def _verified_data(found: VerifiedAnswer) -> dict[str, Any]:
        """An answer no model wrote: ``model`` says so, ``verified`` says who stands behind it."""
        return {"answer": found.answer, "model": "verified", "outcome": "answered", "sources": [],
                "verified": found.mark()}  # fmt: skip

    def _outcome(
        self, question: str, relevant: list[Hit], completion: Completion | None
    ) -> tuple[dict[str, Any], Usage]:
        if completion is None or not completion.text:
            answer = NO_KNOWLEDGE[language_of(question)]
            return {"answer": answer, "model": "none", "outcome": "no_knowledge", "sources": []}, Usage()
        cost = self._accounting.cost(completion.model, completion.prompt_tokens, completion.completion_tokens)
        if is_no_answer(completion.text):
            # The model read the passages and found no answer: the same polite words, outcome and
            # handoff offer as a question without evidence, cached the same way (the index version
            # is in the key, so a changed knowledge base asks again). ``model`` names the model
            # that really answered (DESIGN.md), and its tokens are charged: "none" is kept for
            # the answers no model was asked for.
            answer = NO_KNOWLEDGE[language_of(question)]
            data = {"answer": answer, "model": completion.model, "outcome": "no_knowledge", "sources": []}
            return data, Usage(completion.prompt_tokens, completion.completion_tokens, cost)
        for hit in relevant:
            SOURCES.labels(hit.chunk.collection).inc()
        sources = [
            Source(h.chunk.id, h.chunk.title, h.chunk.text, h.score, h.chunk.collection, h.chunk.url).as_dict()
            for h in relevant
        ]
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
            self._accounting.record(tenant=request.tenant, client=request.client, model=model,
                                    prompt=usage.prompt_tokens, completion=usage.completion_tokens, cached=cached,
                                    forwarded=False)  # fmt: skip
        sources = [Source(**s) for s in data["sources"]]
        verified = data.get("verified")
        if verified is not None:
            VERIFIED_SERVED.labels(verified["collection"]).inc()
        latency_ms = (time.perf_counter() - started) * 1000
        traced = trace_id()  # the line leads to its trace
        if traced:
            annotate(**{"askhub.tenant": request.tenant, "askhub.platform": request.platform, "askhub.route": route,
                        "askhub.model": model, "askhub.outcome": data["outcome"], "askhub.cached": cached,
                        "askhub.sources": len(sources)})  # fmt: skip
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
                **({"verified": verified["id"]} if verified else {}),
                **({"trace_id": traced} if traced else {}),
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
            verified=verified,
        )
