"""👍 / 👎 on an answer, from any front door, kept with the answer's request id.

A request id can be chosen by the client (X-Request-ID), so a vote counts only from the asker
who got that answer: every answer leaves a short-lived owner mark (tenant and client), and a
vote whose asker does not match it is refused as unknown. The marks are written to the shared
backend once a second in one batch, not one round trip per answer: a vote reaching another
process within that second is refused, one reaching this process is not. Comments may hold personal data:
they are redacted like questions before they are stored, logged or shown.
"""

from __future__ import annotations

import time
from typing import Literal

import orjson

from core.auth.service import fingerprint
from core.flush import Flusher
from core.metrics import BACKEND_ERRORS, FEEDBACK
from core.pii import redact
from core.state import BackendUnavailable, StateBackend
from core.stats import Stats

Rating = Literal["up", "down"]
KEEP_SEC = 90 * 86400.0
RECENT = 5000
MAX_COMMENT = 1000
VOTE_WINDOW_SEC = 3 * 86400.0  # how long after an answer its asker may still vote on it


def _owner(tenant: str, client: str) -> bytes:
    return fingerprint(f"{tenant}\x1f{client}").encode()


class FeedbackStore(Flusher):
    def __init__(self, backend: StateBackend, stats: Stats) -> None:
        super().__init__()
        self._backend = backend
        self._stats = stats
        self._pending: dict[str, bytes] = {}  # owner marks not yet in the backend

    def answered(self, request_id: str, *, tenant: str, client: str) -> None:
        """Marks who got this answer, so only they can vote on it."""
        if request_id:
            self._pending[f"answer:{request_id}"] = _owner(tenant, client)

    async def flush(self) -> None:
        marks, self._pending = self._pending, {}
        if not marks:
            return
        try:
            await self._backend.set_many(marks, VOTE_WINDOW_SEC)
        except BackendUnavailable:  # the answers stand; only votes on them will not be taken
            BACKEND_ERRORS.labels("feedback").inc()

    async def record(
        self,
        request_id: str,
        rating: Rating,
        *,
        platform: str,
        user: str,
        tenant: str = "default",
        client: str | None = None,
        comment: str | None = None,
    ) -> bool:
        """One vote per user and answer: a second click replaces the first. ``client`` defaults
        to the platform, which is the client a platform adapter asks as. False (nothing stored)
        for an answer this asker did not get, the same as for one that never existed."""
        owner = self._pending.get(f"answer:{request_id}") or await self._backend.get(f"answer:{request_id}")
        if owner != _owner(tenant, client or platform):
            return False
        entry = {
            "request_id": request_id,
            "rating": rating,
            "platform": platform,
            "tenant": tenant,
            "user_hash": fingerprint(user),
            "comment": redact(comment[:MAX_COMMENT]) if comment else None,
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
        return True

    async def recent(self, count: int = 100) -> list[dict[str, object]]:
        raw = await self._backend.list_range("feedback:recent", count)
        return [orjson.loads(item) for item in reversed(raw)]
