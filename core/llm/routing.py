"""Logical models and the rules that pick them for a question.

The simple case comes from the environment: ``small`` (CHAT_MODEL) and ``large``
(LARGE_MODEL) on the OpenAI-compatible upstream, ``local`` (LOCAL_LLM_*) and the offline
``extractive`` answerer. YAML ``models`` add or replace logical models; YAML ``routes`` replace
the default rules. First matching route wins.

Personal data never reaches a cloud model: whatever the rules say, a question with PII
keeps only the route's local models, and when none is available the answer is a 503 —
never a cloud fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.config import ConfigError, ModelSettings, RouteMatch, RouteSettings, Settings
from core.errors import Unavailable
from core.secrets import secret

# Words that ask for reasoning rather than a lookup: such questions go to the large model.
REASONING = ["why", "compare", "explain", "difference", "analy", "step by step", "pros and cons", "evaluate",
             "為什麼", "比較", "分析", "差異", "解釋", "評估", "優缺點", "步驟"]  # fmt: skip
LONG_CHARS = 400


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    provider: str  # "openai" or "extractive"
    upstream: str  # the model name the upstream knows
    base_url: str | None
    api_key: str | None
    timeout: float
    local: bool
    max_concurrency: int
    responses: str = "translate"  # /v1/responses: "native" passes it to the upstream's own /responses


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    models: tuple[ModelSpec, ...]
    pii: bool = False


def model_decides(route: Route) -> bool:
    """True: a chat model answers this route, and it (not the retriever's floor) decides what the
    passages cannot answer (DESIGN.md: "I don't know" without a model only without evidence).
    The offline answerer cannot decline by itself: for it the retriever abstains."""
    return bool(route.models) and route.models[0].provider != "extractive"


def model_specs(settings: Settings) -> dict[str, ModelSpec]:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    timeout = settings.llm.timeout_sec
    specs = {"extractive": ModelSpec("extractive", "extractive", "extractive", None, None, timeout, True, 1024)}
    if key or settings.openai_base_url:
        for name, upstream in (("small", settings.chat_model), ("large", settings.large_model)):
            specs[name] = ModelSpec(name, "openai", upstream, settings.openai_base_url, key, timeout, False, 64)
    if settings.local_llm_base_url:
        upstream = settings.local_llm_model or "local"
        specs["local"] = ModelSpec("local", "openai", upstream, settings.local_llm_base_url, None, timeout, True, 16)
    for m in settings.models:
        specs[m.name] = _from_settings(m, settings)
    return specs


def _from_settings(m: ModelSettings, settings: Settings) -> ModelSpec:
    key = secret(m.api_key_env) if m.api_key_env else None
    if key is None and m.api_key_env == "OPENAI_API_KEY" and settings.openai_api_key:
        key = settings.openai_api_key.get_secret_value()
    base_url = m.base_url or settings.openai_base_url
    return ModelSpec(m.name, m.provider, m.model or m.name, base_url, key, m.timeout_sec, m.local, m.max_concurrency,
                     m.responses)  # fmt: skip


def default_routes(specs: dict[str, ModelSpec]) -> list[RouteSettings]:
    local = ["local"] if "local" in specs else ["extractive"]
    if "small" not in specs:
        return [RouteSettings(name="pii", when=RouteMatch(pii=True), models=local),
                RouteSettings(name="default", models=local)]  # fmt: skip
    return [
        RouteSettings(name="pii", when=RouteMatch(pii=True), models=local),
        RouteSettings(name="long", when=RouteMatch(min_chars=LONG_CHARS), models=["large", "small"]),
        RouteSettings(name="reasoning", when=RouteMatch(keywords=REASONING), models=["large", "small"]),
        RouteSettings(name="default", models=["small", "large"]),
    ]


class Router:
    def __init__(self, settings: Settings) -> None:
        self.specs = model_specs(settings)
        self.rules = list(settings.routes) or default_routes(self.specs)
        for rule in self.rules:
            missing = [m for m in rule.models if m not in self.specs]
            if missing:
                raise ConfigError(f"routes.{rule.name}: unknown model(s) {', '.join(missing)}")
        self._patterns = {r.name: re.compile(r.when.pattern, re.I) for r in self.rules if r.when.pattern}
        # OpenAI clients name upstream models ("gpt-4o-mini"): each upstream name stands for the
        # first logical model that uses it, unless a logical model already has that name.
        self.aliases: dict[str, str] = {}
        for spec in self.specs.values():
            if spec.upstream not in self.specs:
                self.aliases.setdefault(spec.upstream, spec.name)
        self._default = next((r for r in reversed(self.rules) if r.when == RouteMatch()), None)

    def route(self, question: str, *, pii: bool, tenant: str, platform: str) -> Route:
        rule = next((r for r in self.rules if self._matches(r, question, pii, tenant, platform)), self._default)
        if rule is None:
            raise Unavailable("no route matches this question; ask an operator to add a default route")
        models = tuple(self.specs[name] for name in rule.models)
        if pii:
            models = tuple(m for m in models if m.local)
            if not models:  # the rule names only cloud models: the built-in local chain answers
                models = (self.specs["local"],) if "local" in self.specs else (self.specs["extractive"],)
                return Route("pii", models, True)
        return Route(rule.name, models, pii)

    def by_name(self, name: str) -> ModelSpec | None:
        return self.specs.get(name)

    def resolve(self, name: str) -> str:
        """The logical model ``name`` means: itself, or the one whose upstream name it is."""
        return name if name in self.specs else self.aliases.get(name, name)

    def _matches(self, rule: RouteSettings, question: str, pii: bool, tenant: str, platform: str) -> bool:
        w = rule.when
        lowered = question.lower()
        return (
            (w.pii is None or w.pii == pii)
            and (w.min_chars is None or len(question) >= w.min_chars)
            and (w.max_chars is None or len(question) <= w.max_chars)
            and (not w.keywords or any(k.lower() in lowered for k in w.keywords))
            and (w.pattern is None or self._patterns[rule.name].search(question) is not None)
            and (not w.tenants or tenant in w.tenants)
            and (not w.platforms or platform in w.platforms)
        )
