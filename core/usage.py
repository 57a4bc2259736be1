"""Usage and cost: every request counted per tenant, client, model and day, in the backend."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.config import Price, Settings
from core.flush import Flusher
from core.metrics import BACKEND_ERRORS
from core.state import BackendUnavailable, StateBackend

KEEP_DAYS = 400
SEP = "\t"
# Public list prices (US$ per million tokens); the config's `prices` table overrides them.
DEFAULT_PRICES = {
    "gpt-4o-mini": Price(input_per_1m=0.15, output_per_1m=0.60),
    "gpt-4o": Price(input_per_1m=2.50, output_per_1m=10.00),
}


class UsageLedger(Flusher):
    """Counts are summed in memory and written to the backend once a second (and at
    shutdown): one backend call per second instead of one per request. A process killed
    outright loses at most its last second of usage counts, never a limit decision."""

    def __init__(self, settings: Settings, backend: StateBackend) -> None:
        super().__init__()
        self._backend = backend
        self._pending: dict[str, dict[str, float]] = {}
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        self._prices = {**DEFAULT_PRICES, **settings.prices}
        self._zone = ZoneInfo(settings.limits.quota_timezone)
        self._today = (-10.0, "")

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for day, fields in pending.items():
            try:
                await self._backend.hash_incr(f"usage:{day}", fields, KEEP_DAYS * 86400)
            except BackendUnavailable:
                BACKEND_ERRORS.labels("usage").inc()
                # Keep the counts for the next attempt rather than lose them.
                kept = self._pending.setdefault(day, {})
                for field, amount in fields.items():
                    kept[field] = kept.get(field, 0.0) + amount

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self._prices.get(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / 1_000_000

    def _day(self, offset: int = 0) -> str:
        if offset == 0:  # asked on every request: worked out once a second
            now = time.monotonic()
            if now - self._today[0] > 1.0:
                self._today = (now, datetime.now(self._zone).strftime("%Y-%m-%d"))
            return self._today[1]
        return (datetime.now(self._zone) - timedelta(days=offset)).strftime("%Y-%m-%d")

    def record(
        self,
        *,
        tenant: str,
        client: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        cached: bool,
    ) -> None:
        prefix = SEP.join((tenant, client, model)) + SEP
        fields = self._pending.setdefault(self._day(), {})
        for metric, amount in (
            ("requests", 1),
            ("cached", 1 if cached else 0),
            ("prompt_tokens", prompt_tokens),
            ("completion_tokens", completion_tokens),
            ("cost_usd", cost),
        ):
            fields[prefix + metric] = fields.get(prefix + metric, 0.0) + amount

    async def report(self, days: int, tenant: str | None = None) -> list[dict[str, object]]:
        """Rows of (day, tenant, client, model) with their totals, newest day first."""
        await self.flush()
        rows: list[dict[str, object]] = []
        for offset in range(days):
            day = self._day(offset)
            table = await self._backend.hash_get_all(f"usage:{day}")
            grouped: dict[tuple[str, str, str], dict[str, object]] = {}
            for field, value in table.items():
                t, c, m, metric = field.split(SEP)
                if tenant is not None and t != tenant:
                    continue
                row = grouped.setdefault((t, c, m), {"day": day, "tenant": t, "client": c, "model": m})
                row[metric] = round(value, 8) if metric == "cost_usd" else int(value)
            rows.extend(sorted(grouped.values(), key=lambda r: (str(r["tenant"]), str(r["client"]), str(r["model"]))))
        return rows
