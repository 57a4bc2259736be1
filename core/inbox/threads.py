"""Thread markers: "the bot answers in this thread", so a follow-up there needs no mention.

Kept by core, keyed by platform AND tenant: a marker one tenant's bot set can never make
another tenant's bot answer (or reveal that the thread exists). Adapters never see the keys.
"""

from __future__ import annotations

import logging

from core.errors import Unavailable
from core.state import BackendUnavailable, StateBackend

log = logging.getLogger("askhub.inbox")

THREAD_SEC = 7 * 86400.0


class ThreadMarkers:
    def __init__(self, backend: StateBackend) -> None:
        self._backend = backend

    @staticmethod
    def _key(platform: str, tenant: str, thread: str) -> str:
        return f"thread:{platform}:{tenant}:{thread}"

    async def mark(self, platform: str, tenant: str, thread: str, *, ttl_sec: float = THREAD_SEC) -> bool:
        """Remember the thread; False when the shared state is down (follow-ups then need a mention)."""
        try:
            await self._backend.set(self._key(platform, tenant, thread), b"1", ttl_sec)
        except BackendUnavailable as exc:
            log.warning("thread not recorded", extra={"platform": platform, "exc": type(exc).__name__})
            return False
        return True

    async def marked(self, platform: str, tenant: str, thread: str) -> bool:
        """Raises ``Unavailable`` when the shared state is down (the platform should retry)."""
        try:
            return await self._backend.get(self._key(platform, tenant, thread)) is not None
        except BackendUnavailable:
            raise Unavailable("cannot look up the thread right now; the platform will retry", retry_after=5) from None
