"""From a question to a model answer: the route its content and sender call for, and the
resilient call over that route's models.

Front ends never name a provider. A question with personal data goes to a local model only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from core.config import Settings
from core.kb.embedders import Embedder
from core.llm.base import Completion, Prompt, Provider
from core.llm.extractive import ExtractiveProvider
from core.llm.resilience import Resilience
from core.llm.routing import ModelSpec, Route, Router
from core.metrics import LLM_TOKENS, PII_ROUTED
from core.pii import has_pii
from core.tracing import active, model_reply

T = TypeVar("T")


def make_provider(spec: ModelSpec, embedder: Embedder | None = None) -> Provider:
    if spec.provider == "extractive":
        return ExtractiveProvider(embedder)
    from core.llm.openai_provider import OpenAIProvider  # the SDK takes a second to import: only when used

    return OpenAIProvider(model=spec.upstream, api_key=spec.api_key, base_url=spec.base_url, timeout=spec.timeout)


class ModelGateway:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self._embedder = embedder  # the offline answerer ranks sentences with it
        self.router = Router(settings)
        self.resilience = Resilience(settings.resilience)
        self._providers: dict[str, Provider] = {
            name: make_provider(spec, embedder) for name, spec in self.router.specs.items()
        }
        self._retired: list[Provider] = []

    def configure(self, settings: Settings) -> None:
        """Models, routes and resilience from a changed config, without a restart. Unchanged
        models keep their clients (and breakers); replaced ones are closed at shutdown."""
        router = Router(settings)
        for name, spec in router.specs.items():
            if self.router.specs.get(name) != spec:
                if name in self._providers:
                    self._retired.append(self._providers[name])
                self._providers[name] = make_provider(spec, self._embedder)
        for name in set(self._providers) - set(router.specs):
            self._retired.append(self._providers.pop(name))
        self.router = router
        self.resilience.configure(settings.resilience)

    @property
    def names(self) -> list[str]:
        """The logical models, as /v1/models lists them."""
        return list(self.router.specs)

    def spec(self, name: str) -> ModelSpec | None:
        """The logical model ``name`` means (its own name or its upstream's), if configured."""
        return self.router.by_name(self.router.resolve(name))

    def resolve(self, name: str) -> str:
        return self.router.resolve(name)

    def rules(self, question: str, *, pii: bool, tenant: str, platform: str) -> Route:
        """The route the rules pick for a question whose personal-data verdict is known."""
        return self.router.route(question, pii=pii, tenant=tenant, platform=platform)

    async def call(self, route: Route, attempt: Callable[[ModelSpec], Awaitable[T]], operation: str = "chat") -> T:
        """``attempt`` over the route's models with retries, fallbacks and breakers (for /v1
        bodies the hub relays as they are); ``operation`` names the calls' spans."""
        result, _ = await self.resilience.call(route, attempt, operation=operation, relay=True)
        return result

    def relay(
        self, route: Route, open_stream: Callable[[ModelSpec], AsyncIterator[bytes]]
    ) -> AsyncIterator[tuple[bytes, ModelSpec]]:
        return self.resilience.stream(route, open_stream, relay=True)

    def route(self, question: str, *, earlier: str = "", tenant: str, platform: str, tenant_label: str) -> Route:
        """The rules match the question; personal data in it or in ``earlier`` turns of its
        conversation (which go into the prompt too) sends it to the local route."""
        pii = has_pii(question) or (bool(earlier) and has_pii(earlier))
        if pii:
            PII_ROUTED.labels(tenant_label).inc()
        return self.router.route(question, pii=pii, tenant=tenant, platform=platform)

    async def complete(
        self, route: Route, prompt: Prompt, temperature: float, max_tokens: int, *, patient: bool = False
    ) -> Completion:
        async def attempt(spec: ModelSpec) -> Completion:
            return await self.provide(spec, prompt, temperature, max_tokens)

        completion, _ = await self.resilience.call(route, attempt, patient=patient)
        _count_tokens(completion)
        return completion

    async def provide(self, spec: ModelSpec, prompt: Prompt, temperature: float, max_tokens: int) -> Completion:
        """One model's own answer, inside an attempt the caller's resilience already runs (every
        attempt here, and the /v1 offline answerer: the same provider, embedder included, as /ask's);
        its reply's GenAI attributes go on the attempt's span."""
        return _traced(
            await self._providers[spec.name].complete(prompt, temperature=temperature, max_tokens=max_tokens)
        )

    async def complete_once(self, spec: ModelSpec, prompt: Prompt, temperature: float, max_tokens: int) -> Completion:
        """One attempt on one model — within its in-flight bound and breaker, counted like any
        call — with no retry and no fallback: a side call (the question rewrite) that must stay short."""

        async def attempt(model: ModelSpec) -> Completion:
            return await self.provide(model, prompt, temperature, max_tokens)

        completion, _ = await self.resilience.call(Route(spec.name, (spec,)), attempt, retries=0)
        _count_tokens(completion)
        return completion

    async def stream(
        self, route: Route, prompt: Prompt, temperature: float, max_tokens: int, *, patient: bool = False
    ) -> AsyncIterator[str | Completion]:
        def open_stream(spec: ModelSpec) -> AsyncIterator[str | Completion]:
            return self._providers[spec.name].stream(prompt, temperature=temperature, max_tokens=max_tokens)

        async for part, _ in self.resilience.stream(route, open_stream, patient=patient):
            if isinstance(part, Completion):
                _count_tokens(part)
                _traced(part)  # on the question's span: the model call's own span ended at the first piece
            yield part

    async def unreachable(self) -> list[str]:
        problems = []
        for name, provider in self._providers.items():
            problem = await provider.ping()
            if problem:
                problems.append(f"model {name}: {problem}")
        return problems

    def breaker_states(self) -> dict[str, dict[str, str]]:
        """Every model's circuit (for /readyz details: an open circuit fails over, it does not
        make the whole replica unready)."""
        return {name: self.resilience.breaker(name).describe() for name in self._providers}

    async def aclose(self) -> None:
        for provider in [*self._providers.values(), *self._retired]:
            await provider.aclose()


def _traced(completion: Completion) -> Completion:
    """The reply's GenAI attributes on the model call's span (a no-op when not tracing)."""
    if active():
        finish = [completion.finish_reason] if completion.finish_reason else []
        model_reply(completion.model, completion.prompt_tokens, completion.completion_tokens, finish)
    return completion


def _count_tokens(completion: Completion) -> None:
    LLM_TOKENS.labels(completion.model, "prompt").inc(completion.prompt_tokens)
    LLM_TOKENS.labels(completion.model, "completion").inc(completion.completion_tokens)
