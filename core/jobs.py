"""The queue of accepted chat events: adapters acknowledge after ``submit`` and answer later.

A platform wants its webhook acknowledged within about three seconds whatever the model
does. Adapters verify and record an event, submit it here, and acknowledge; workers call
the handler the adapter registered for that kind of job. This in-process queue is bounded:
when it is full, ``submit`` refuses (the webhook answers 503 and the platform retries
later) rather than letting work pile up without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core.errors import Unavailable
from core.metrics import QUEUE_AGE, QUEUE_DEPTH

log = logging.getLogger("askhub.jobs")
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class MemoryQueue:
    def __init__(self, *, workers: int = 16, max_waiting: int = 10_000) -> None:
        self._handlers: dict[str, Handler] = {}
        self._queue: asyncio.Queue[tuple[float, str, dict[str, Any]]] = asyncio.Queue(max_waiting)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def submit(self, kind: str, payload: dict[str, Any]) -> None:
        if kind not in self._handlers:
            raise ValueError(f"no handler registered for {kind!r}")
        try:
            self._queue.put_nowait((time.monotonic(), kind, payload))
        except asyncio.QueueFull:
            raise Unavailable("too many questions waiting; try again shortly", retry_after=5) from None
        QUEUE_DEPTH.set(self._queue.qsize())

    def depth(self) -> int:
        return self._queue.qsize() + self._busy

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"job-worker-{n}") for n in range(self._workers)]

    async def close(self, drain_sec: float = 10.0) -> None:
        """Finish what is queued and in flight within ``drain_sec``, then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_sec)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait until everything submitted so far is handled (tests)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            queued_at, kind, payload = await self._queue.get()
            self._busy += 1
            QUEUE_DEPTH.set(self._queue.qsize())
            QUEUE_AGE.set(time.monotonic() - queued_at)
            try:
                await self._handlers[kind](payload)
            except Exception as exc:  # one bad job must not stop the worker
                log.error("job failed", extra={"kind": kind, "exc": type(exc).__name__})
            finally:
                self._busy -= 1
                self._queue.task_done()
