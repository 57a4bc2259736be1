"""Showing an answer as it grows, at the pace a platform allows.

Slack and Discord rate-limit message edits (about one a second is safe); the model
produces tokens far faster. ``Progress`` keeps the latest text and calls ``update`` at
most once per ``interval``; the caller shows the final text itself (with its buttons and sources).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable


class Progress:
    def __init__(self, update: Callable[[str], Awaitable[None]], interval: float = 1.0) -> None:
        self._update = update
        self._interval = interval
        self._last = 0.0
        self._text = ""
        self._shown = ""

    async def push(self, text: str) -> None:
        self._text = text
        now = time.monotonic()
        if now - self._last >= self._interval and self._text != self._shown:
            self._last = now
            self._shown = self._text
            await self._update(self._text)
