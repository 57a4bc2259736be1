"""Admission and accounting, once for every door: /ask, the platforms, /v1 chat and embeddings.

Every answered request is charged the same way — the usage ledger (tenant, client, model, day),
the tenant's token budget, the cost and token metrics, the dashboard's counts — and every
request a limit refuses is counted the same way, whichever service answered it.
"""

from __future__ import annotations

from core.auth.principal import Principal
from core.errors import HubError
from core.limits import Governor
from core.metrics import COST, LLM_TOKENS, TENANT_TOKENS
from core.schema import Admission
from core.stats import Stats
from core.usage import UsageLedger


class Accounting:
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def use(self, governor: Governor, usage: UsageLedger) -> None:
        """The limits and prices in force (replaced as a whole when the config changes)."""
        self._governor = governor
        self._usage = usage

    def tenant_label(self, tenant: str) -> str:
        return self._governor.tenant_label(tenant)

    async def admit(self, principal: Principal, route: str) -> Admission:
        """The limits' verdict; a refusal counts on the dashboard before it is raised."""
        try:
            return await self._governor.admit(principal, route)
        except HubError as exc:
            self.failed(exc)
            raise

    def failed(self, exc: HubError) -> None:
        self.stats.failed(limited=exc.type == "rate_limited", error=exc.status >= 500)

    def cost(self, model: str, prompt: int, completion: int) -> float:
        return self._usage.cost(model, prompt, completion)

    def record(
        self, *, tenant: str, client: str, model: str, prompt: int, completion: int, cached: bool, forwarded: bool
    ) -> float:
        """Usage and cost of one answer; returns its cost. ``forwarded``: a /v1 body relayed as
        is, whose tokens the model gateway did not count."""
        cost = self.cost(model, prompt, completion)
        if forwarded:
            LLM_TOKENS.labels(model, "prompt").inc(prompt)
            LLM_TOKENS.labels(model, "completion").inc(completion)
        label = self._governor.tenant_label(tenant)
        COST.labels(label, model).inc(cost)
        TENANT_TOKENS.labels(label, model).inc(prompt + completion)
        self._usage.record(tenant=tenant, client=client, model=model, prompt_tokens=prompt,
                           completion_tokens=completion, cost=cost, cached=cached)  # fmt: skip
        return cost

    async def charge_tokens(self, tenant: str, tokens: int) -> None:
        """Against the tenant's daily token budget (cache hits cost nothing)."""
        await self._governor.charge_tokens(tenant, tokens)

    async def side_call(self, principal: Principal, model: str, prompt: int, completion: int) -> None:
        """A model call made for a request besides its answer (the question rewrite): its tokens
        and cost count like an answer's — usage ledger, cost and token metrics, the tenant's
        budget — but not as another answered request on the dashboard."""
        self.record(tenant=principal.tenant, client=principal.client, model=model, prompt=prompt,
                    completion=completion, cached=False, forwarded=False)  # fmt: skip
        await self.charge_tokens(principal.tenant, prompt + completion)

    async def forwarded(
        self, principal: Principal, model: str, prompt: int, completion: int, latency_ms: float
    ) -> None:
        """All of it for a /v1 request the hub relayed: usage, budget, dashboard."""
        cost = self.record(tenant=principal.tenant, client=principal.client, model=model, prompt=prompt,
                           completion=completion, cached=False, forwarded=True)  # fmt: skip
        self.stats.answered(tenant=principal.tenant, latency_ms=latency_ms, tokens=prompt + completion, cost=cost,
                            cached=False)  # fmt: skip
        await self.charge_tokens(principal.tenant, prompt + completion)
