"""👍 / 👎 on an answer, from any front door, kept with the answer's request id."""

from __future__ import annotations

import time
from typing import Literal

import orjson

from core.auth.service import fingerprint
from core.metrics import FEEDBACK
from core.state import StateBackend
from core.stats import Stats

Rating = Literal["up", "down"]
KEEP_SEC = 90 * 86400.0
RECENT = 5000
MAX_COMMENT = 1000


class FeedbackStore:
    def __init__(self, backend: StateBackend, stats: Stats) -> None:
        self._backend = backend
        self._stats = stats

    async def record(
        self,
        request_id: str,
        rating: Rating,
        *,
        platform: str,
        user: str,
        tenant: str = "default",
        comment: str | None = None,
    ) -> None:
        """One vote per user and answer: a second click replaces the first."""
        entry = {
            "request_id": request_id,
            "rating": rating,
            "platform": platform,
            "tenant": tenant,
            "user_hash": fingerprint(user),
            "comment": (comment or "")[:MAX_COMMENT] or None,
            "at": time.time(),
        }
        data = orjson.dumps(entry)
        first = await self._backend.set(
            f"feedback:{request_id}:{fingerprint(user)}", data, KEEP_SEC, only_if_absent=True
        )
        if not first:
            await self._backend.set(f"feedback:{request_id}:{fingerprint(user)}", data, KEEP_SEC)
        await self._backend.list_push("feedback:recent", data, RECENT, KEEP_SEC)
        if first:
            FEEDBACK.labels(platform, rating).inc()
            self._stats.feedback(rating)

    async def recent(self, count: int = 100) -> list[dict[str, object]]:
        raw = await self._backend.list_range("feedback:recent", count)
        return [orjson.loads(item) for item in reversed(raw)]
