"""Shared state: what every process of a deployment must agree on.

Limits, quotas, the answer cache, dedupe records, usage, feedback and conversation memory
all go through this one small interface, implemented in process memory (one process) and
in Redis (many processes). Operations that must be exact across processes are single
atomic steps of the interface (Lua scripts in Redis), never read-modify-write in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BackendUnavailable(Exception):
    """The shared backend cannot be reached; callers apply their documented policy."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one limit check."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until a slot (or token) frees up; 0 when one is free now


@dataclass(frozen=True, slots=True)
class AdmitPlan:
    """Every limit one request must pass, checked in one atomic step (one round trip)."""

    window_key: str
    limit: int
    window_sec: float
    bucket_key: str | None = None
    bucket_capacity: int = 0
    bucket_rate: float = 0.0
    tokens_key: str | None = None  # the tenant's tokens used today, against tokens_budget
    tokens_budget: float = 0.0
    requests_key: str | None = None  # the tenant's requests today, against requests_limit
    requests_limit: int = 0
    day_ttl_sec: float = 2 * 86400
    # The whole client's sliding window (every user together): checked first, counted only
    # when every other check admitted the request.
    client_key: str | None = None
    client_limit: int = 0
    client_window_sec: float = 0.0


@dataclass(frozen=True, slots=True)
class Admit:
    window: Decision  # the user's sliding window (for the X-RateLimit-* headers)
    refused_by: str | None = None  # "user_window", "burst", "tenant_tokens", "tenant_requests" or "client_window"
    refusal: Decision | None = None  # the decision that refused, for Retry-After


class StateBackend(Protocol):
    name: str

    async def ping(self) -> None: ...

    async def admit(self, plan: AdmitPlan) -> Admit:
        """Apply the plan's checks in order, stopping at the first that refuses."""
        ...

    async def counter_take(self, key: str, amount: float, limit: float | None, ttl_sec: float) -> tuple[bool, float]:
        """Add ``amount`` unless that would pass ``limit``; returns (added, value after)."""
        ...

    async def counter_get(self, key: str) -> float: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_sec: float, *, only_if_absent: bool = False) -> bool:
        """Store a value; with ``only_if_absent`` it is a claim that exactly one caller wins."""
        ...

    async def set_many(self, values: dict[str, bytes], ttl_sec: float) -> None:
        """Several values with one expiry in one go (one round trip in Redis)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def hash_incr(self, key: str, fields: dict[str, float], ttl_sec: float) -> None: ...

    async def hash_get_all(self, key: str) -> dict[str, float]: ...

    async def hash_get_many(self, keys: list[str]) -> list[dict[str, float]]:
        """Several hashes in one go (one round trip in Redis)."""
        ...

    async def hash_drop(self, key: str, fields: list[str]) -> None:
        """Remove fields of a hash (an index of open items that one closed)."""
        ...

    async def list_push(self, key: str, value: bytes, max_len: int, ttl_sec: float) -> None:
        """Append, keep only the newest ``max_len`` entries, refresh the expiry."""
        ...

    async def list_extend(self, key: str, values: list[bytes], max_len: int, ttl_sec: float) -> None:
        """``list_push`` of several values in one step."""
        ...

    async def list_range(self, key: str, count: int) -> list[bytes]:
        """The newest ``count`` entries, oldest first."""
        ...

    async def table_set(self, key: str, field: str, value: bytes) -> None:
        """A durable record in a table: no expiry, never evicted (verified answers)."""
        ...

    async def table_all(self, key: str) -> dict[str, bytes]: ...

    async def table_incr(self, key: str, field: str) -> int:
        """Add one to a durable counter in a table; returns the value after."""
        ...

    async def close(self) -> None: ...
