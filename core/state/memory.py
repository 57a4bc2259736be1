"""Shared state in this process's memory: the default for one process.

Everything runs on the event loop without awaiting inside an operation, so each operation
is atomic for the process, exactly as the Redis scripts are for a deployment.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque

from core.state.base import Admit, AdmitPlan, Decision

MAX_KEYS = 200_000  # values and counters beyond this evict the least recently used


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self._values: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._windows: dict[str, tuple[float, deque[float]]] = {}
        self._windows_seen = 0
        self._tables: dict[str, dict[str, bytes]] = {}  # durable records: outside the LRU

    # -- expiring values -------------------------------------------------------------
    def _load(self, key: str) -> object | None:
        item = self._values.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= time.time():
            del self._values[key]
            return None
        self._values.move_to_end(key)
        return value

    def _store(self, key: str, value: object, ttl_sec: float) -> None:
        self._values[key] = (time.time() + ttl_sec, value)
        self._values.move_to_end(key)
        while len(self._values) > MAX_KEYS:
            self._values.popitem(last=False)

    async def ping(self) -> None:
        return None

    async def admit(self, plan: AdmitPlan) -> Admit:
        # No await below suspends: the whole plan runs as one step of the event loop.
        if plan.client_key:
            full = self._window_full(plan.client_key, plan.client_limit, plan.client_window_sec)
            if full is not None:
                return Admit(Decision(True, plan.limit, plan.limit, 0.0), "client_window", full)
        window = self._window_hit(plan.window_key, plan.limit, plan.window_sec)
        if not window.allowed:
            return Admit(window, "user_window", window)
        if plan.bucket_key:
            bucket = self._bucket_take(plan.bucket_key, plan.bucket_capacity, plan.bucket_rate)
            if not bucket.allowed:
                return Admit(window, "burst", bucket)
        if plan.tokens_key and await self.counter_get(plan.tokens_key) >= plan.tokens_budget:
            return Admit(window, "tenant_tokens", Decision(False, int(plan.tokens_budget), 0, 0.0))
        if plan.requests_key:
            added, _ = await self.counter_take(plan.requests_key, 1, plan.requests_limit, plan.day_ttl_sec)
            if not added:
                return Admit(window, "tenant_requests", Decision(False, plan.requests_limit, 0, 0.0))
        if plan.client_key:
            self._window_hit(plan.client_key, plan.client_limit, plan.client_window_sec)
        return Admit(window)

    def _window_full(self, key: str, limit: int, window_sec: float) -> Decision | None:
        """The refusal if the window has no free slot (nothing is counted)."""
        now = time.time()
        hits = self._windows.get(key, (window_sec, deque()))[1]
        while hits and hits[0] <= now - window_sec:
            hits.popleft()
        return Decision(False, limit, 0, hits[0] + window_sec - now) if len(hits) >= limit else None

    def _window_hit(self, key: str, limit: int, window_sec: float) -> Decision:
        now = time.time()
        hits = self._windows.setdefault(key, (window_sec, deque()))[1]
        while hits and hits[0] <= now - window_sec:
            hits.popleft()
        self._windows_seen += 1
        if self._windows_seen % 10_000 == 0:
            self._sweep_windows(now)
        if len(hits) < limit:
            hits.append(now)
            reset = hits[0] + window_sec - now if len(hits) >= limit else 0.0
            return Decision(True, limit, limit - len(hits), reset)
        return Decision(False, limit, 0, hits[0] + window_sec - now)

    def _sweep_windows(self, now: float) -> None:
        """Forget users whose window emptied, so memory follows active users only."""
        stale = [k for k, (window, hits) in self._windows.items() if not hits or hits[-1] <= now - window]
        for key in stale:
            del self._windows[key]

    def _bucket_take(self, key: str, capacity: int, refill_per_sec: float) -> Decision:
        now = time.time()
        state = self._load(key)
        tokens, stamp = state if isinstance(state, tuple) else (float(capacity), now)
        tokens = min(float(capacity), tokens + (now - stamp) * refill_per_sec)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._store(key, (tokens, now), capacity / refill_per_sec + 1)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / refill_per_sec
        return Decision(allowed, capacity, int(tokens), wait)

    async def counter_take(self, key: str, amount: float, limit: float | None, ttl_sec: float) -> tuple[bool, float]:
        value = self._load(key)
        current = float(value) if isinstance(value, int | float) else 0.0
        if limit is not None and current + amount > limit:
            return False, current
        item = self._values.get(key)
        ttl = item[0] - time.time() if item and value is not None else ttl_sec
        self._store(key, current + amount, ttl)
        return True, current + amount

    async def counter_get(self, key: str) -> float:
        value = self._load(key)
        return float(value) if isinstance(value, int | float) else 0.0

    async def get(self, key: str) -> bytes | None:
        value = self._load(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_sec: float, *, only_if_absent: bool = False) -> bool:
        if only_if_absent and self._load(key) is not None:
            return False
        self._store(key, value, ttl_sec)
        return True

    async def set_many(self, values: dict[str, bytes], ttl_sec: float) -> None:
        for key, value in values.items():
            self._store(key, value, ttl_sec)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def hash_incr(self, key: str, fields: dict[str, float], ttl_sec: float) -> None:
        current = self._load(key)
        table: dict[str, float] = current if isinstance(current, dict) else {}
        for field, amount in fields.items():
            table[field] = table.get(field, 0.0) + amount
        self._store(key, table, ttl_sec)

    async def hash_get_all(self, key: str) -> dict[str, float]:
        current = self._load(key)
        return dict(current) if isinstance(current, dict) else {}

    async def hash_get_many(self, keys: list[str]) -> list[dict[str, float]]:
        return [await self.hash_get_all(key) for key in keys]

    async def hash_drop(self, key: str, fields: list[str]) -> None:
        current = self._load(key)
        if isinstance(current, dict):
            for field in fields:
                current.pop(field, None)

    async def list_push(self, key: str, value: bytes, max_len: int, ttl_sec: float) -> None:
        await self.list_extend(key, [value], max_len, ttl_sec)

    async def list_extend(self, key: str, values: list[bytes], max_len: int, ttl_sec: float) -> None:
        current = self._load(key)
        items: deque[bytes] = current if isinstance(current, deque) else deque(maxlen=max_len)
        if items.maxlen != max_len:
            items = deque(items, maxlen=max_len)
        items.extend(values)
        self._store(key, items, ttl_sec)

    async def list_range(self, key: str, count: int) -> list[bytes]:
        current = self._load(key)
        return list(current)[-count:] if isinstance(current, deque) and count > 0 else []

    async def table_set(self, key: str, field: str, value: bytes) -> None:
        self._tables.setdefault(key, {})[field] = value

    async def table_all(self, key: str) -> dict[str, bytes]:
        return dict(self._tables.get(key, {}))

    async def table_incr(self, key: str, field: str) -> int:
        table = self._tables.setdefault(key, {})
        value = int(table.get(field, b"0")) + 1
        table[field] = str(value).encode()
        return value

    async def close(self) -> None:
        self._values.clear()
        self._windows.clear()
