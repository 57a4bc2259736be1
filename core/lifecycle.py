"""Running a long-lived process until it is asked to stop: SIGTERM/SIGINT, and the exit code.

Typed against a small ``Service`` protocol (start, close), so this leaf knows nothing of the
hub; ``core.adapters.run_alone`` builds the hub for an adapter's own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from core import logs
from core.config import ConfigError, mask_credentials


class Service(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


def config_error(exc: ConfigError) -> int:
    """The one way a process refuses a configuration: one line on stderr, exit code 2."""
    print(f"config error: {mask_credentials(str(exc))}", file=sys.stderr)
    return 2


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (the way process managers ask a process to stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_until_stopped(service: Service, runners: list[Callable[[], Awaitable[None]]], name: str) -> int:
    """Start ``service`` and run ``runners`` until SIGTERM/SIGINT or until one ends by itself;
    then stop them, close the service (queued answers finish first) and flush the logs.

    The exit code: 0 when asked to stop, 2 for a configuration the platform refused, 1 when
    a runner gave up (why goes to stderr)."""
    stop = stop_on_signals()
    await service.start()
    tasks = [asyncio.create_task(runner(), name=name) for runner in runners]
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        ended = next((task for task in tasks if task.done()), None)
        if ended is None:
            return 0
        exc = None if ended.cancelled() else ended.exception()
        if isinstance(exc, ConfigError):
            return config_error(exc)
        print(f"{name} stopped: {type(exc).__name__}: {exc}" if exc else f"{name} stopped", file=sys.stderr)
        return 1
    finally:
        for task in [stopper, *tasks]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await service.close()
        logs.flush()
