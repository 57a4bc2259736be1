"""Per-user limits and per-tenant quotas, exact across processes.

One call decides a request: the user's sliding window (RATE_LIMIT_* or the tenant's or
client's override), an optional burst bucket, the tenant's daily request quota and token
budget. ``Retry-After`` and ``X-RateLimit-Reset`` come from the window or bucket that said
no — never a fixed number. When the shared backend is unreachable the configured policy
applies (fail closed by default) and says so; limits never quietly become per-process.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.auth.principal import Principal
from core.auth.service import fingerprint
from core.config import BurstSettings, Settings
from core.errors import InvalidType, RateLimited, Unavailable
from core.metrics import BACKEND_ERRORS, RATE_LIMITED
from core.schema import Admission
from core.state import BackendUnavailable, Decision, StateBackend
from core.state.base import AdmitPlan

AUDIT = logging.getLogger("askhub.audit")
REASONS = {
    "user_window": "too many questions in a short time",
    "client_window": "too many requests from this client in a short time",
    "burst": "too many questions at once",
    "tenant_tokens": "the department's daily token budget is used up",
    "tenant_requests": "the department's daily quota is used up",
}
DAY_TTL = 2 * 86400
END_USER_FIELDS = ("user", "safety_identifier")  # OpenAI's names for the end user of a service
MAX_END_USER_CHARS = 256


def end_user(principal: Principal, body: dict[str, Any]) -> Principal:
    """The principal a ``/v1`` request stands for: a service's key (its user is the client
    itself) naming its end user in ``user`` is limited per end user; a person (a JWT ``sub``)
    stays who they are. The name is kept only as a fingerprint (it may be personal data). A value
    that is not a string names nobody (it is still read for personal data, like every value)."""
    for field in END_USER_FIELDS:
        named = body.get(field)
        if not isinstance(named, str) or not named:
            continue
        if len(named) > MAX_END_USER_CHARS:
            raise InvalidType(f"{field}: at most {MAX_END_USER_CHARS} characters")
        if principal.user != principal.client:
            return principal
        return replace(principal, user=f"{principal.client}~{fingerprint(named)}")
    return principal


class Governor:
    def __init__(self, settings: Settings, backend: StateBackend) -> None:
        self._settings = settings
        self._backend = backend
        self._clients = {c.name: c for c in settings.clients}
        self._zone = ZoneInfo(settings.limits.quota_timezone)
        self._day_until = 0.0
        self._day_cache = ("", 0.0, 0.0)
        self._known_tenants = set(settings.tenants) | {c.tenant for c in settings.clients} | {"default"}
        self._known_tenants |= {entry.split(":")[1] for entry in settings.hub_api_keys}

    def tenant_label(self, tenant: str) -> str:
        """Configured tenants by name, anything else as "other": metric labels stay bounded."""
        return tenant if tenant in self._known_tenants else "other"

    def _window(self, principal: Principal) -> tuple[int, float]:
        client = self._clients.get(principal.client)
        tenant = self._settings.tenants.get(principal.tenant)
        override = (client and client.rate_limit) or (tenant and tenant.rate_limit)
        if override:
            return override.max_per_user, override.window_sec
        return self._settings.rate_limit_max_per_user, self._settings.rate_limit_window_sec

    def _burst(self, principal: Principal) -> BurstSettings | None:
        client = self._clients.get(principal.client)
        tenant = self._settings.tenants.get(principal.tenant)
        return (client and client.burst) or (tenant and tenant.burst) or None

    async def admit(self, principal: Principal, route: str) -> Admission:
        limit, window = self._window(principal)
        who = f"{principal.tenant}:{principal.user}"
        burst = self._burst(principal)
        tenant = self._settings.tenants.get(principal.tenant)
        day, until_midnight = self._day()
        tokens = tenant.tokens_per_day if tenant else None
        requests = tenant.requests_per_day if tenant else None
        client = self._clients.get(principal.client)
        whole = client.client_rate_limit if client else None
        plan = AdmitPlan(
            window_key=f"rl:{who}",
            limit=limit,
            window_sec=window,
            bucket_key=f"burst:{who}" if burst else None,
            bucket_capacity=burst.capacity if burst else 0,
            bucket_rate=burst.refill_per_sec if burst else 0.0,
            tokens_key=f"quota:tok:{principal.tenant}:{day}" if tokens else None,
            tokens_budget=tokens or 0,
            requests_key=f"quota:req:{principal.tenant}:{day}" if requests else None,
            requests_limit=requests or 0,
            day_ttl_sec=DAY_TTL,
            client_key=f"rlc:{principal.tenant}:{principal.client}" if whole else None,
            client_limit=whole.max_requests if whole else 0,
            client_window_sec=whole.window_sec if whole else 0.0,
        )
        try:
            outcome = await self._backend.admit(plan)
        except BackendUnavailable:
            BACKEND_ERRORS.labels("limits").inc()
            return self._backend_down(principal, limit)
        if outcome.refused_by is not None:
            refusal = outcome.refusal or outcome.window
            if outcome.refused_by.startswith("tenant_"):  # daily quotas free up at midnight
                refusal = Decision(False, refusal.limit, 0, until_midnight)
            self._reject(principal, route, outcome.refused_by, refusal)
        return Admission(limit, outcome.window.remaining, outcome.window.reset_after)

    async def charge_tokens(self, tenant: str, tokens: int) -> None:
        """Count tokens against the tenant's daily budget (after the model answered)."""
        if tokens <= 0 or self._settings.tenants.get(tenant) is None:
            return
        day, _ = self._day()
        try:
            await self._backend.counter_take(f"quota:tok:{tenant}:{day}", tokens, None, DAY_TTL)
        except BackendUnavailable:
            BACKEND_ERRORS.labels("limits").inc()

    def _day(self) -> tuple[str, float]:
        """Today's date in the quota time zone and the seconds until it ends."""
        clock = time.monotonic()
        if clock >= self._day_until:  # worked out again only when the cached second is over
            now = datetime.now(self._zone)
            midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            self._day_cache = (now.strftime("%Y-%m-%d"), (midnight - now).total_seconds(), clock)
            self._day_until = clock + min(1.0, self._day_cache[1])
        day, left, at = self._day_cache
        return day, left - (clock - at)

    def _reject(self, principal: Principal, route: str, which: str, decision: Decision) -> None:
        why = REASONS[which]
        RATE_LIMITED.labels(self.tenant_label(principal.tenant), which).inc()
        AUDIT.warning(
            "limited",
            extra={
                "event": "rate_limited",
                "tenant": principal.tenant,
                "client": principal.client,
                "user_hash": fingerprint(principal.user),
                "route": route,
                "limit": which,
            },
        )
        admission = Admission(decision.limit, 0, decision.reset_after)
        raise RateLimited(
            f"{why}; try again in {math.ceil(decision.reset_after)} s",
            retry_after=max(decision.reset_after, 1.0),
            headers=admission.headers(),
        )

    def _backend_down(self, principal: Principal, limit: int) -> Admission:
        if self._settings.limits.backend_down == "open" or principal.exempt_when_backend_down:
            return Admission(limit, None, 0.0)
        raise Unavailable("limits cannot be checked right now (shared state unreachable)", retry_after=5)
