"""Counts summed in memory and written to the shared backend every second and at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("askhub.lifecycle")


class Flusher:
    """One backend call a second instead of one per request (stats, usage)."""

    interval = 1.0

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._every(), name=f"{type(self).__name__.lower()}-flush")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # a bad flush must not stop the next ones
                log.exception("periodic flush failed", extra={"part": type(self).__name__})

    async def flush(self) -> None:
        raise NotImplementedError
