"""The inbox of platform events: the one accept → answer → done path every adapter uses.

accept()   a platform delivered an event: claim it in the event ledger (a redelivery is a
           duplicate), queue it, and let the adapter acknowledge. When it cannot be queued
           the claim is released and ``Unavailable`` (503) raised, so the platform retries.
answer()   the job answers it inside a context that marks the event done (an answer, or an
           apology, is visible) or releases it (nothing was posted: a redelivery answers).
           What the job opened on the platform (a Slack stream, a placeholder message) is
           noted as it goes, so a worker that reclaims the job after a crash finds it and
           finishes or replaces it instead of posting a second answer.
Each accept is a span (a child of the webhook's request span, or a root for a socket event)
and each answer a span inside the job's, which continues that trace across the queue.

declare()  job kinds and their handlers, declared when an adapter loads: once the hub
           starts, a late kind is refused (it would have no reader in a durable queue).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from core.dedupe import EventLedger
from core.errors import Unavailable
from core.jobs import Handler, JobQueue
from core.state import BackendUnavailable, StateBackend
from core.tracing import NO_SPAN, Tracing, span

log = logging.getLogger("askhub.inbox")

NOTES_SEC = 86400.0  # what a job opened outlives any redelivery of it


class Answer:
    """One event being answered. ``opened`` holds what an earlier attempt noted (empty the first time)."""

    def __init__(self, inbox: Inbox, platform: str, event_id: str, opened: dict[str, Any]) -> None:
        self._inbox = inbox
        self.platform, self.event_id = platform, event_id
        self.opened = opened
        self.visible = False  # the user sees something: never release (a redelivery would repeat it)
        self._give_back = False
        self._span: Any = NO_SPAN

    async def note(self, **opened: Any) -> None:
        """Record what this attempt opened on the platform (ids of a stream, a placeholder), before
        anything depends on it: a reclaiming worker re-enters with it in ``opened``."""
        self.opened.update(opened)
        try:
            await self._inbox.backend.set(self._inbox.notes_key(self.platform, self.event_id),
                                          orjson.dumps(self.opened), NOTES_SEC)  # fmt: skip
        except BackendUnavailable as exc:  # the answer goes on; only a crash recovery would miss it
            log.warning("answer note not recorded", extra={"event": self.event_id, "exc": type(exc).__name__})

    def shown(self) -> None:
        """Something is visible to the user (an answer, an apology): the event is done, whatever follows."""
        self.visible = True
        self._span.add_event("shown")

    def give_back(self) -> None:
        """Nothing could be posted: release the event so that a redelivery answers it."""
        self._give_back = True


class Inbox:
    def __init__(
        self, ledger: EventLedger, jobs: JobQueue, backend: StateBackend, tracing: Tracing | None = None
    ) -> None:
        self.ledger, self.jobs, self.backend = ledger, jobs, backend
        self.tracing = tracing or Tracing({})

    @staticmethod
    def notes_key(platform: str, event_id: str) -> str:
        return f"event:{platform}:{event_id}:opened"

    def declare(self, kind: str, handler: Handler) -> None:
        """A job kind and the handler that answers it; before the hub starts (else ``KindError``)."""
        self.jobs.register(kind, handler)

    async def accept(self, platform: str, event_id: str, kind: str, payload: dict[str, Any]) -> bool:
        """Claim and queue one event. False: a duplicate (someone handles or handled it). Raises
        ``Unavailable`` when the ledger or the queue cannot take it (then nothing is claimed)."""
        attrs = {"askhub.platform": platform, "askhub.job.kind": kind}
        with self.tracing.root(f"accept {platform}", kind="producer", **attrs) as current:
            if not await self.ledger.claim(platform, event_id):
                current.set_attribute("askhub.duplicate", True)
                return False
            try:
                await self.jobs.submit(kind, payload, event=(platform, event_id))  # carries this span's context
            except BaseException:
                try:
                    await self.ledger.release(platform, event_id)
                except BackendUnavailable:
                    log.warning("claim not released; it expires", extra={"event": event_id})
                raise
            return True

    @asynccontextmanager
    async def answer(self, platform: str, event_id: str) -> AsyncIterator[Answer]:
        """Answer one event: done on a normal exit or once something is visible; released when the
        job gave it back or failed before showing anything (the exception propagates)."""
        try:
            raw = await self.backend.get(self.notes_key(platform, event_id))
        except BackendUnavailable:
            raw = None
        answer = Answer(self, platform, event_id, orjson.loads(raw) if raw else {})
        # Inside the job's span (the accepted event's trace): the answer and the platform reply.
        with span(
            f"answer {platform}", **{"askhub.platform": platform, "askhub.resumed": bool(answer.opened)}
        ) as current:
            answer._span = current
            try:
                yield answer
            except BaseException:
                if answer.visible:
                    await self.ledger.done(platform, event_id)
                else:
                    await self._release(platform, event_id)
                raise
            released = answer._give_back and not answer.visible
            current.set_attribute("askhub.event.outcome", "released" if released else "done")
            if released:
                await self._release(platform, event_id)
            else:
                await self.ledger.done(platform, event_id)

    async def _release(self, platform: str, event_id: str) -> None:
        try:
            await self.ledger.release(platform, event_id)
        except BackendUnavailable:
            log.warning("claim not released; it expires", extra={"event": event_id})

    async def idle(self) -> None:
        """Until everything accepted so far is answered (tests)."""
        await self.jobs.idle()


__all__ = ["Answer", "Inbox", "Unavailable"]
