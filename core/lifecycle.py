"""Small pieces every long-running part of the hub shares: periodic flushes, stopping on
SIGTERM/SIGINT, and running a bot process until it is asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core import logs
from core.config import ConfigError

if TYPE_CHECKING:
    from core.hub import Hub

log = logging.getLogger("askhub.lifecycle")


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (the way process managers ask a process to stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_until_stopped(hub: Hub, runners: list[Callable[[], Awaitable[None]]], name: str) -> int:
    """Start the hub and run ``runners`` until SIGTERM/SIGINT or until one ends by itself;
    then stop them, close the hub (queued answers finish first) and flush the logs.

    The exit code: 0 when asked to stop, 2 for a configuration the platform refused, 1 when
    a runner gave up (why goes to stderr)."""
    stop = stop_on_signals()
    await hub.start()
    tasks = [asyncio.create_task(runner(), name=name) for runner in runners]
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        ended = next((task for task in tasks if task.done()), None)
        if ended is None:
            return 0
        exc = None if ended.cancelled() else ended.exception()
        if isinstance(exc, ConfigError):
            print(f"config error: {exc}", file=sys.stderr)
            return 2
        print(f"{name} stopped: {type(exc).__name__}: {exc}" if exc else f"{name} stopped", file=sys.stderr)
        return 1
    finally:
        for task in [stopper, *tasks]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await hub.close()
        logs.flush()


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
