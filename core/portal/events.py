"""A conversation's events (an agent's reply, the end of a handoff) for the asker's SSE stream.

Kept on the state backend as a short list per conversation, so the process that handles the
agent's reply appends and the process that holds the asker's stream reads. A reader in the same
process is woken at once; one in another process sees the event on its next poll (``POLL_SEC``,
one LRANGE), which costs nothing while nobody follows a conversation.

Exactly once per key: a publish is claimed under its key ("sending", then "done"); a repeat
after a crash appends only if the event is not in the list yet, and readers drop a repeated id
(two processes racing on the same key can at most append it twice; it is shown once).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import orjson

from core.state import StateBackend

POLL_SEC = 0.5
KEEP = 200  # events per conversation
KEEP_SEC = 86400.0

Kind = Literal["agent", "end"]


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    kind: Kind
    text: str
    at: float

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "text": self.text, "at": self.at}


class ConversationEvents:
    def __init__(self, backend: StateBackend) -> None:
        self._backend = backend
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @staticmethod
    def stream_of(conversation_key: str) -> str:
        """The list that holds one conversation's events (the key already names its owner)."""
        return f"conv:events:{_hash(conversation_key)}"

    async def publish(self, stream: str, key: str, kind: Kind, text: str) -> Event:
        event = Event(_hash(stream, key), kind, text, round(time.time(), 3))
        claim = f"conv:sent:{event.id}"
        claimed = await self._backend.set(claim, b"sending", KEEP_SEC, only_if_absent=True)
        if not claimed and (await self._backend.get(claim) == b"done" or await self._has(stream, event.id)):
            return event  # an earlier attempt got it through
        await self._backend.list_push(stream, orjson.dumps(event.as_dict()), KEEP, KEEP_SEC)
        await self._backend.set(claim, b"done", KEEP_SEC)
        for waiter in self._waiters.get(stream, ()):
            waiter.set()
        return event

    async def _has(self, stream: str, event_id: str) -> bool:
        return any(e.id == event_id for e in await self.all(stream))

    async def all(self, stream: str) -> list[Event]:
        """The conversation's events, oldest first, each id once."""
        seen: set[str] = set()
        events = []
        for raw in await self._backend.list_range(stream, KEEP):
            data = orjson.loads(raw)
            if data["id"] not in seen:
                seen.add(data["id"])
                events.append(Event(data["id"], data["kind"], data["text"], float(data["at"])))
        return events

    async def follow(self, stream: str, after: str | None = None, *, for_sec: float = 3600.0) -> AsyncIterator[Event]:
        """Events after the one with id ``after`` (all of them when it is unknown), then new ones
        as they come, until the reader stops or ``for_sec`` have passed."""
        sent: set[str] = set()
        deadline = time.monotonic() + for_sec
        while time.monotonic() < deadline:
            events = await self.all(stream)
            ids = [e.id for e in events]
            start = ids.index(after) + 1 if after in ids else 0
            sent.update(ids[:start])
            for event in events[start:]:
                if event.id not in sent:
                    sent.add(event.id)
                    after = event.id
                    yield event
            await self._wait(stream)

    async def _wait(self, stream: str) -> None:
        waiter = asyncio.Event()
        self._waiters.setdefault(stream, set()).add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), POLL_SEC)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(stream)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[stream]
