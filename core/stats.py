"""Per-minute statistics for the admin dashboard, shared by every process.

Counts are summed in memory and added to per-minute hashes in the backend once a second
(like usage), so the dashboard shows the whole deployment, not one process. Latency is kept
as a small histogram per minute, enough for p50/p95 on a chart.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from core.flush import Flusher
from core.metrics import BACKEND_ERRORS
from core.pii import redact
from core.state import BackendUnavailable, StateBackend

LATENCY_MS = (25, 50, 100, 250, 500, 1000, 2000, 3000, 5000, 10000, 30000)
KEEP_SEC = 26 * 3600
RECENT = 200
COUNTERS = ("requests", "errors", "cached", "limited", "pii", "tokens", "cost_usd", "feedback_up", "feedback_down")


def _minute(ts: float) -> int:
    return int(ts // 60) * 60


class Stats(Flusher):
    def __init__(self, backend: StateBackend) -> None:
        super().__init__()
        self._backend = backend
        self._pending: dict[int, dict[str, float]] = {}
        self._recent: list[dict[str, Any]] = []

    def _add(self, fields: dict[str, float]) -> None:
        bucket = self._pending.setdefault(_minute(time.time()), {})
        for name, amount in fields.items():
            bucket[name] = bucket.get(name, 0.0) + amount

    def answered(
        self,
        *,
        tenant: str,
        latency_ms: float,
        tokens: int,
        cost: float,
        cached: bool,
        entry: dict[str, Any] | None = None,
    ) -> None:
        """A question that got an answer (entry: a row for the dashboard's recent table)."""
        bucket = next((n for n, limit in enumerate(LATENCY_MS) if latency_ms <= limit), len(LATENCY_MS))
        self._add({"requests": 1, "cached": int(cached), "tokens": tokens, "cost_usd": cost, f"lat_{bucket}": 1,
                   f"tenant\t{tenant}\trequests": 1, f"tenant\t{tenant}\ttokens": tokens,
                   f"tenant\t{tenant}\tcost_usd": cost})  # fmt: skip
        if entry is not None:
            entry["at"] = time.time()
            self._recent.append(entry)  # redacted and serialised at flush, for the newest only

    def failed(self, *, limited: bool, error: bool) -> None:
        """A question without an answer: refused by a limit, or failed on our side (5xx).
        A caller's own mistake (400, 422) is neither: it does not move the error rate."""
        self._add({"requests": 1, "errors": int(error), "limited": int(limited)})

    def pii(self) -> None:
        self._add({"pii": 1})

    def feedback(self, rating: str) -> None:
        self._add({f"feedback_{rating}": 1})

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        recent, self._recent = self._recent, []
        try:
            for minute, fields in pending.items():
                await self._backend.hash_incr(f"stats:{minute}", fields, KEEP_SEC)
            if recent:  # only the newest matter, and they go in one call
                rows = [orjson.dumps({**e, "question": redact(str(e.get("question", "")))}) for e in recent[-RECENT:]]
                await self._backend.list_extend("stats:recent", rows, RECENT, KEEP_SEC)
        except BackendUnavailable:
            BACKEND_ERRORS.labels("stats").inc()  # a dashboard gap, never a failed request

    async def window(self, minutes: int, bucket_minutes: int) -> dict[str, Any]:
        """Series over the last ``minutes``, in buckets of ``bucket_minutes``, with totals."""
        await self.flush()
        now = _minute(time.time())
        starts = [now - 60 * m for m in range(minutes - 1, -1, -1)]
        tables = await self._backend.hash_get_many([f"stats:{s}" for s in starts])
        series: list[dict[str, Any]] = []
        tenants: dict[str, dict[str, float]] = {}
        totals: dict[str, float] = {}
        for i in range(0, len(starts), bucket_minutes):
            merged: dict[str, float] = {}
            for table in tables[i : i + bucket_minutes]:
                for name, value in table.items():
                    merged[name] = merged.get(name, 0.0) + value
            for name, value in merged.items():
                if name.startswith("tenant\t"):
                    _, tenant, metric = name.split("\t")
                    tenants.setdefault(tenant, {})[metric] = tenants.get(tenant, {}).get(metric, 0.0) + value
                else:
                    totals[name] = totals.get(name, 0.0) + value
            series.append({"t": starts[i], **_point(merged)})
        return {
            "bucket_sec": bucket_minutes * 60,
            "series": series,
            "totals": _point(totals),
            "tenants": sorted(
                ({"tenant": t, **{k: round(v, 6) for k, v in m.items()}} for t, m in tenants.items()),
                key=lambda row: -row.get("requests", 0),
            ),
        }

    async def recent(self, count: int = 50) -> list[dict[str, Any]]:
        await self.flush()
        raw = await self._backend.list_range("stats:recent", count)
        return [orjson.loads(item) for item in reversed(raw)]


def _point(fields: dict[str, float]) -> dict[str, Any]:
    point: dict[str, Any] = {name: round(fields.get(name, 0.0), 6) for name in COUNTERS}
    requests = fields.get("requests", 0.0)
    answered = requests - fields.get("errors", 0.0) - fields.get("limited", 0.0)
    point["error_rate"] = round(fields.get("errors", 0.0) / requests, 4) if requests else 0.0
    point["cache_hit_ratio"] = round(fields.get("cached", 0.0) / answered, 4) if answered > 0 else 0.0
    votes = fields.get("feedback_up", 0.0) + fields.get("feedback_down", 0.0)
    point["feedback_ratio"] = round(fields.get("feedback_up", 0.0) / votes, 4) if votes else None
    histogram = [fields.get(f"lat_{n}", 0.0) for n in range(len(LATENCY_MS) + 1)]
    point["p50_ms"] = _percentile(histogram, 0.50)
    point["p95_ms"] = _percentile(histogram, 0.95)
    return point


def _percentile(histogram: list[float], q: float) -> float | None:
    total = sum(histogram)
    if not total:
        return None
    running = 0.0
    for n, count in enumerate(histogram):
        running += count
        if running >= q * total:
            return float(LATENCY_MS[n]) if n < len(LATENCY_MS) else float(LATENCY_MS[-1])
    return float(LATENCY_MS[-1])
