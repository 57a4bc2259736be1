"""Handled-event records: a platform's redeliveries are answered once, not twice, not never.

    claim()   the first delivery takes a lease (processing); later deliveries see it and skip
    done()    after the answer is posted: kept for days, every redelivery is skipped
    release() the attempt failed before answering: the next redelivery is answered

A worker that dies mid-answer leaves a lease that expires, so a later redelivery (or the
durable queue's reclaim) answers it. The records live in the shared backend, so they
hold across every process of a deployment.
"""

from __future__ import annotations

from core.errors import Unavailable
from core.retry import retrying
from core.state import BackendUnavailable, StateBackend

LEASE_SEC = 120.0
DONE_SEC = 7 * 86400.0
DONE_RETRY_SEC = 60.0  # how long an answered event keeps trying to record it through a Redis outage


class EventLedger:
    def __init__(self, backend: StateBackend) -> None:
        self._backend = backend

    @staticmethod
    def _key(platform: str, event_id: str) -> str:
        return f"event:{platform}:{event_id}"

    async def claim(self, platform: str, event_id: str, *, lease_sec: float = LEASE_SEC) -> bool:
        """True when this caller should handle the event (nobody handles or handled it).

        Unreachable shared state means the event cannot be accepted safely: a 503, so the
        platform delivers it again later, rather than a guess that could answer it twice."""
        try:
            return await self._backend.set(self._key(platform, event_id), b"processing", lease_sec, only_if_absent=True)
        except BackendUnavailable:
            raise Unavailable("cannot record the event right now; the platform will retry", retry_after=5) from None

    async def done(self, platform: str, event_id: str, *, retry_sec: float = DONE_RETRY_SEC) -> None:
        """Record the answer. It is already posted, so a failed write would let the queue's
        redelivery answer again: a Redis blip is waited out (backing off) rather than given up."""
        async for attempt in retrying(BackendUnavailable, within_sec=retry_sec):
            with attempt:
                await self._backend.set(self._key(platform, event_id), b"done", DONE_SEC)

    async def release(self, platform: str, event_id: str) -> None:
        await self._backend.delete(self._key(platform, event_id))

    async def state(self, platform: str, event_id: str) -> str | None:
        value = await self._backend.get(self._key(platform, event_id))
        return value.decode() if value else None
