"""Small pieces every long-running part of the hub shares: periodic flushes and stopping
on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

log = logging.getLogger("askhub.lifecycle")


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (the way process managers ask a process to stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


class Flusher:
    """Counts summed in memory and written out every ``interval`` seconds and at shutdown:
    one backend call a second instead of one per request."""

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
