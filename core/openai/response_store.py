"""The conversations behind ``previous_response_id``, in the shared state backend.

Why here and not upstream: the hub translates to chat completions for most upstreams, which
keep nothing, and may fall back or route personal data to another model between turns. So the
hub keeps each response's conversation (input and output items) itself, for ``ttl_sec``, under
the asker who made it: another client, tenant or user naming the id finds nothing.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from core.auth.principal import Principal
from core.config import ResponsesSettings
from core.errors import Unavailable
from core.state import BackendUnavailable
from core.state.base import StateBackend

log = logging.getLogger("askhub.responses")


class ResponseStore:
    def __init__(self, backend: StateBackend, settings: ResponsesSettings) -> None:
        self._backend = backend
        self.use(settings)

    def use(self, settings: ResponsesSettings) -> None:
        self._ttl = settings.ttl_sec
        self._max_items = settings.max_items

    @staticmethod
    def _key(principal: Principal, response_id: str) -> str:
        owner = hashlib.sha256(f"{principal.tenant}\0{principal.client}\0{principal.user}".encode()).hexdigest()[:32]
        return f"resp:{owner}:{response_id}"

    async def load(self, principal: Principal, response_id: str) -> list[dict[str, Any]] | None:
        """The conversation up to and including that response; None if unknown to this asker."""
        try:
            raw = await self._backend.get(self._key(principal, response_id))
        except BackendUnavailable:
            raise Unavailable("earlier responses cannot be read right now; try again shortly") from None
        return orjson.loads(raw) if raw is not None else None

    async def save(self, principal: Principal, response_id: str, items: list[dict[str, Any]]) -> None:
        try:
            await self._backend.set(
                self._key(principal, response_id), orjson.dumps(items[-self._max_items :]), self._ttl
            )
        except BackendUnavailable:  # the answer is given; only a later previous_response_id will miss it
            log.warning("response not stored", extra={"exc": "BackendUnavailable"})
