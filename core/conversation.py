"""Conversation memory: the last turns of a conversation (a portal session, a Slack thread,
a LINE chat, a Discord thread), kept for a while in the shared backend."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from core.config import ConversationSettings
from core.metrics import BACKEND_ERRORS
from core.state import BackendUnavailable, StateBackend

MAX_STORED_CHARS = 4000  # per answer: enough context for a follow-up, bounded memory


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    answer: str


class Conversations:
    def __init__(self, settings: ConversationSettings, backend: StateBackend) -> None:
        self._settings = settings
        self._backend = backend

    async def history(self, conversation_id: str | None) -> list[Turn]:
        if not conversation_id or self._settings.turns == 0:
            return []
        try:
            raw = await self._backend.list_range(f"conv:{conversation_id}", self._settings.turns)
        except BackendUnavailable:
            BACKEND_ERRORS.labels("conversation").inc()
            return []  # answer without memory rather than not at all
        return [Turn(**orjson.loads(item)) for item in raw]

    async def add(self, conversation_id: str | None, question: str, answer: str) -> None:
        if not conversation_id or self._settings.turns == 0:
            return
        entry = orjson.dumps({"question": question, "answer": answer[:MAX_STORED_CHARS]})
        try:
            await self._backend.list_push(
                f"conv:{conversation_id}", entry, self._settings.turns, self._settings.ttl_sec
            )
        except BackendUnavailable:
            BACKEND_ERRORS.labels("conversation").inc()
