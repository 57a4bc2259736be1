"""Handoffs on the shared state backend (memory for one process, Redis for many).

    handoff:conv:<hash of platform, tenant, conversation>  -> id   (claimed once: one handoff a chat)
    handoff:rec:<id>                                       -> the record (JSON)
    handoff:desk:<hash of desk channel, thread ts>         -> id   (a thread reply finds its handoff)
    handoff:<id>:taken | :human | :seen | :closed          -> small facts, each one atomic write
    handoff:open                                           -> hash id -> start time (the open list)
    handoff:relay:<key>                                    -> a relay in progress / done (exactly once)

Every fact that must be decided once across processes (which message started it, who closes
it) is a ``set(only_if_absent=True)`` claim; nothing is read, changed and written back.
"""

from __future__ import annotations

import hashlib

import orjson

from core.handoff.record import Customer, Handoff
from core.state import StateBackend

KEEP_SEC = 30 * 86400.0  # records and desk threads outlive any handoff (late replies find a closed one)
RELAY_SEC = 3 * 86400.0
OPEN = "handoff:open"


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


class HandoffStore:
    def __init__(self, backend: StateBackend) -> None:
        self._backend = backend

    # -- keys --

    @staticmethod
    def _conv(customer: Customer) -> str:
        return f"handoff:conv:{_hash(customer.platform, customer.tenant, customer.conversation)}"

    @staticmethod
    def _desk(channel: str, ts: str) -> str:
        return f"handoff:desk:{_hash(channel, ts)}"

    # -- the record --

    async def claim(self, handoff: Handoff) -> str:
        """Make ``handoff`` the chat's open one unless one is open: the id that holds the chat."""
        key = self._conv(handoff.customer)
        await self.save(handoff)  # first: whoever sees the claim finds its record
        if await self._backend.set(key, handoff.id.encode(), KEEP_SEC, only_if_absent=True):
            await self._backend.hash_incr(OPEN, {handoff.id: handoff.started_at}, KEEP_SEC)
            return handoff.id
        held = await self._backend.get(key)
        return held.decode() if held else await self.claim(handoff)  # it ended meanwhile: try again

    async def save(self, handoff: Handoff) -> None:
        await self._backend.set(f"handoff:rec:{handoff.id}", handoff.model_dump_json().encode(), KEEP_SEC)
        if handoff.desk_channel and handoff.desk_ts:
            await self._backend.set(self._desk(handoff.desk_channel, handoff.desk_ts), handoff.id.encode(), KEEP_SEC)

    async def get(self, handoff_id: str) -> Handoff | None:
        raw = await self._backend.get(f"handoff:rec:{handoff_id}")
        return Handoff.model_validate_json(raw) if raw else None

    async def active(self, customer: Customer) -> Handoff | None:
        """The chat's open handoff, if any."""
        held = await self._backend.get(self._conv(customer))
        return await self.get(held.decode()) if held else None

    async def by_desk(self, channel: str, ts: str) -> Handoff | None:
        held = await self._backend.get(self._desk(channel, ts))
        return await self.get(held.decode()) if held else None

    async def open_ids(self) -> dict[str, float]:
        """Open handoffs: id -> start time."""
        return {k: v for k, v in (await self._backend.hash_get_all(OPEN)).items() if v > 0}

    # -- facts --

    async def fact(self, handoff_id: str, name: str) -> dict[str, object] | None:
        raw = await self._backend.get(f"handoff:{handoff_id}:{name}")
        return orjson.loads(raw) if raw else None

    async def first(self, handoff_id: str, name: str, value: dict[str, object]) -> bool:
        """Record a fact once (taken, first human reply, closed): True for the one caller that did."""
        return await self._backend.set(f"handoff:{handoff_id}:{name}", orjson.dumps(value), KEEP_SEC,
                                       only_if_absent=True)  # fmt: skip

    async def note(self, handoff_id: str, name: str, value: dict[str, object]) -> None:
        """A fact that the latest writer sets (the agent's last reply)."""
        await self._backend.set(f"handoff:{handoff_id}:{name}", orjson.dumps(value), KEEP_SEC)

    async def touch(self, handoff_id: str, at: float) -> None:
        """The last message, either way (the idle close counts from it)."""
        await self._backend.set(f"handoff:{handoff_id}:seen", orjson.dumps({"at": at}), KEEP_SEC)

    async def release(self, handoff: Handoff) -> None:
        """The chat is the bot's again; the record and the desk thread stay (late replies find it closed)."""
        await self._backend.delete(self._conv(handoff.customer))
        await self._backend.hash_drop(OPEN, [handoff.id])

    # -- relays: each message once --

    async def relay_state(self, key: str) -> str:
        """new (claimed now), retry (an earlier attempt may have got through) or done."""
        name = f"handoff:relay:{_hash(key)}"
        if await self._backend.set(name, b"sending", RELAY_SEC, only_if_absent=True):
            return "new"
        value = await self._backend.get(name)
        return "done" if value == b"done" else "retry"

    async def relay_done(self, key: str) -> None:
        await self._backend.set(f"handoff:relay:{_hash(key)}", b"done", RELAY_SEC)
