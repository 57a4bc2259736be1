"""Runs each scheduled source every ``every``, in the one process that owns the schedule.

Without Redis that is the server itself; with Redis it is ``python -m core worker`` (any
number of them: the sync's lock lets one run a source at a time, the others find it busy).
When a source is due is read from its copy's state, so a restart neither syncs everything at
once nor forgets a source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core.sources.sync import SourceSync, status_lines

log = logging.getLogger("askhub.sources")
MAX_SLEEP_SEC = 60.0


class SourceSchedule:
    def __init__(self, sync: SourceSync) -> None:
        self._sync = sync
        self._task: asyncio.Task[None] | None = None
        self._now: dict[str, asyncio.Task[object]] = {}  # "Sync now" from the dashboard, by source

    @property
    def running(self) -> set[str]:
        return {name for name, task in self._now.items() if not task.done()}

    def last_sync(self, name: str) -> float | None:
        return self._sync.mirror(self._sync.source(name)).state().last_sync

    def sync_now(self, name: str) -> bool:
        """Start a sync in the background; False when this process is already syncing it."""
        if name in self.running:
            return False
        self._now[name] = asyncio.create_task(self._sync.run(name), name=f"source-sync-{name}")
        return True

    @property
    def scheduled(self) -> list[str]:
        return [s.name for s in self._sync.settings.sources if s.every]

    def start(self) -> None:
        status_lines(self._sync.settings)  # the gauges, from each copy's state
        if self.scheduled and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="source-schedule")

    async def close(self) -> None:
        for task in self._now.values():
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            wait = MAX_SLEEP_SEC
            for source in self._sync.settings.sources:
                if not source.every:
                    continue
                state = await asyncio.to_thread(self._sync.mirror(source).state)
                due = (state.last_sync or 0.0) + source.every - time.time()
                if due <= 0:
                    try:
                        await self._sync.run(source.name)
                    except Exception as exc:  # a bug in one source must not stop the others' schedule
                        log.error("source %s: sync crashed: %s", source.name, type(exc).__name__)
                    due = source.every
                wait = min(wait, max(due, 1.0))
            await asyncio.sleep(wait)
